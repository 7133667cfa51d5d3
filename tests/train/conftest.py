import pytest
from train_helpers import synth


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("synth"))

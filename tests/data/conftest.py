import pytest

from medxfer.data.synth import synthesize


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory):
    """synthchest (with lung masks) and synthpath (without masks), 10 images per class."""
    root = tmp_path_factory.mktemp("small-synth")
    synthesize(root, n_per_class=10, seed=0, modalities=["synthchest", "synthpath"])
    return root

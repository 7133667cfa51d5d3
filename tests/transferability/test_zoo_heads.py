"""What a zoo entry's weight file holds as its source head, and the refusal to score LEEP on a
head the file does not have (``create_backbone`` would start a random one silently)."""

from __future__ import annotations

import pytest
import torch

from medxfer.errors import MedxferInputError
from medxfer.models import create_backbone
from medxfer.transferability.zoo import SourceModel, Zoo, check_heads, head_classes


def _zoo(tmp_path, arch: str, state: dict, num_classes: int | None = None) -> Zoo:
    torch.save(state, tmp_path / "w.pt")
    src = SourceModel(name="src", architecture=arch, weights="w.pt", num_classes=num_classes,
                      normalization="half")
    return Zoo(sources=[src], path=str(tmp_path / "zoo.yaml"))


@pytest.mark.parametrize("arch, make, want", [
    # saved from our backbone + classifier (keys backbone.*, head.*)
    ("tiny_cnn", lambda: create_backbone("tiny_cnn", num_classes=4).state_dict(), 4),
    ("tiny_cnn", lambda: create_backbone("tiny_cnn").state_dict(), None),
    # a DistributedDataParallel checkpoint of the same
    ("tiny_cnn", lambda: {f"module.{k}": v for k, v in
                          create_backbone("tiny_cnn", num_classes=2).state_dict().items()}, 2),
    # torchvision's own classifier: the last of two Linear layers (the first stays in the body)
    ("torchvision:mobilenet_v3_small",
     lambda: __import__("torchvision").models.mobilenet_v3_small(num_classes=5).state_dict(), 5),
    ("torchvision:mobilenet_v3_small",
     lambda: create_backbone("torchvision:mobilenet_v3_small").state_dict(), None),
    # timm's classifier (fc)
    ("resnet10t", lambda: __import__("timm").create_model("resnet10t", num_classes=3)
     .state_dict(), 3),
])
def test_head_classes_reads_the_file(tmp_path, arch, make, want):
    torch.manual_seed(0)
    zoo = _zoo(tmp_path, arch, make())
    assert head_classes(zoo, zoo.sources[0]) == want


def test_a_head_that_does_not_match_num_classes_is_refused_for_leep_only(tmp_path):
    state = create_backbone("tiny_cnn", num_classes=4).state_dict()
    check_heads(_zoo(tmp_path, "tiny_cnn", state, 4), ["leep", "logme"], ["leep"])
    wrong = _zoo(tmp_path, "tiny_cnn", state, 7)
    check_heads(wrong, ["logme", "fu"], ["leep"])  # no metric reads the head
    with pytest.raises(MedxferInputError) as err:
        check_heads(wrong, ["leep", "logme"], ["leep"])
    assert str(err.value) == (
        f"{tmp_path / 'zoo.yaml'}, field '[0].num_classes': {tmp_path / 'w.pt'} holds a "
        "4-class classifier, not num_classes = 7; leep reads the source head's logits and would "
        "see a random head: set num_classes to the file's classes (4), or remove num_classes "
        "to skip leep for this source")
    # Without num_classes the source has no head: LEEP is skipped later, with a reason.
    check_heads(_zoo(tmp_path, "tiny_cnn", state, None), ["leep"], ["leep"])

"""Segmentation nets (smp U-Net / DeepLabV3+) whose encoder comes from our checkpoints."""

import pytest
import torch

from medxfer.errors import MedxferInputError
from medxfer.models import create_backbone, create_segmentation_model
from medxfer.models.segmentation import smp_encoder_name


@pytest.fixture(scope="module")
def resnet_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    backbone = create_backbone("resnet18", in_chans=1)
    path = tmp_path_factory.mktemp("ckpt") / "encoder.pt"
    torch.save(backbone.state_dict(), path)
    return path, backbone.state_dict()


@pytest.mark.parametrize("arch", ["unet", "deeplabv3plus"])
def test_encoder_takes_exactly_the_checkpoint_and_forward_shape(arch, resnet_ckpt):
    path, state = resnet_ckpt
    random = create_segmentation_model(arch, "resnet18", in_chans=1, n_classes=3)
    net = create_segmentation_model(arch, "resnet18", in_chans=1, n_classes=3, weights=path)
    enc = net.encoder.state_dict()
    assert set(enc) == set(state)
    assert all(torch.equal(enc[k], state[k]) for k in state)
    assert not torch.equal(random.encoder.state_dict()["conv1.weight"], state["conv1.weight"])
    net.eval()
    for side in (28, 32):
        assert net(torch.rand(2, 1, side, side)).shape == (2, 3, side, side)


def test_finetune_model_file_and_torchvision_name(tmp_path, resnet_ckpt):
    _, state = resnet_ckpt
    clf = create_backbone("torchvision:resnet18", in_chans=1, num_classes=4)
    path = tmp_path / "model.pt"
    torch.save(clf.state_dict(), path)  # keys backbone.*, head.*
    net = create_segmentation_model("unet", "torchvision:resnet18", in_chans=1, weights=path)
    assert torch.equal(net.encoder.conv1.weight, clf.backbone.conv1.weight)


def test_timm_encoder_maps_and_lists_unused_keys(tmp_path):
    backbone = create_backbone("efficientnet_b0", in_chans=1)
    path = tmp_path / "enc.pt"
    torch.save(backbone.state_dict(), path)
    net = create_segmentation_model("unet", "efficientnet_b0", in_chans=1, weights=path)
    assert smp_encoder_name("efficientnet_b0") == "tu-efficientnet_b0"
    assert torch.equal(net.encoder.model.conv_stem.weight, backbone.conv_stem.weight)
    assert "conv_head.weight" in net.dropped_keys  # the classifier-side conv features_only drops


def test_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(MedxferInputError, match="cannot be a segmentation encoder"):
        create_segmentation_model("unet", "tiny_cnn")
    with pytest.raises(MedxferInputError, match="unknown segmentation arch 'fpn'"):
        create_segmentation_model("fpn")
    missing = tmp_path / "none.pt"
    with pytest.raises(MedxferInputError, match=str(missing)):
        create_segmentation_model("unet", "resnet18", weights=missing)
    other = tmp_path / "r34.pt"
    torch.save(create_backbone("resnet34", in_chans=1).state_dict(), other)
    with pytest.raises(MedxferInputError, match="r34.pt"):
        create_segmentation_model("unet", "resnet18", weights=other)

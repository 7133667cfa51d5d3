"""Backbones: shapes for in_chans 1/3 and several sizes, local weights only, clear errors."""

import socket

import pytest
import torch

from medxfer.errors import MedxferInputError
from medxfer.models import (BackboneInfo, TinyCNN, backbone_info, create_backbone, list_backbones,
                            register_backbone)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any socket connection fails the test: weights must never be downloaded."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("name", ["tiny_cnn", "resnet10t", "torchvision:resnet18",
                                  "torchvision:mobilenet_v3_small"])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_embedding_shape_any_size(name, in_chans):
    model = create_backbone(name, in_chans=in_chans).eval()
    for size in (28, 32, 45):
        with torch.no_grad():
            out = model(torch.randn(2, in_chans, size, size))
        assert out.shape == (2, model.embed_dim) and torch.isfinite(out).all()


def test_tiny_cnn_is_registered_and_wide_enough():
    assert list_backbones() == ["tiny_cnn", "vit_tiny_p4", "xrv_densenet121"]
    model = create_backbone("tiny_cnn", in_chans=1)
    assert isinstance(model, TinyCNN) and model.embed_dim >= 64


@pytest.mark.parametrize("name", list_backbones())
def test_every_local_backbone_matches_its_record(name):
    info = backbone_info(name)
    assert info.name == name and info.description
    for in_chans in (1, 3):
        model = create_backbone(name, in_chans=in_chans).eval()
        with torch.no_grad():
            side = max(28, info.min_size)
            out = model(torch.randn(2, in_chans, side, side))
        assert model.embed_dim == info.embed_dim and out.shape == (2, info.embed_dim)


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv3_small_050", "lcnet_050"])
def test_timm_embed_dim_is_the_output_width(name):
    """Heads with a 1x1 conv after pooling (MobileNetV3, LCNet) output head_hidden_size
    features, not num_features: a projection head sized by embed_dim must fit."""
    model = create_backbone(name, in_chans=1).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, model.embed_dim)


def test_backbone_registry_names():
    with pytest.raises(ValueError, match="already registered"):
        register_backbone(BackboneInfo("tiny_cnn", TinyCNN, 128))
    with pytest.raises(ValueError, match=r"unknown local backbone .tiny.; valid: tiny_cnn, "
                                         r"vit_tiny_p4, xrv_densenet121 \(or a"):
        backbone_info("tiny")


def test_torchvision_first_conv_adapted_and_classifier_removed():
    model = create_backbone("torchvision:resnet18", in_chans=1)
    assert model.conv1.in_channels == 1 and isinstance(model.fc, torch.nn.Identity)
    assert model.embed_dim == 512


def test_num_classes_adds_head():
    model = create_backbone("tiny_cnn", in_chans=3, num_classes=5).eval()
    x = torch.randn(3, 3, 32, 32)
    assert model(x).shape == (3, 5) and model.forward_features(x).shape == (3, model.embed_dim)


@pytest.mark.parametrize("name,wrap", [("tiny_cnn", None), ("tiny_cnn", "state_dict"),
                                       ("tiny_cnn", "model"), ("resnet10t", None),
                                       ("torchvision:resnet18", "state_dict")])
def test_weights_round_trip(tmp_path, name, wrap):
    src = create_backbone(name, in_chans=1).eval()
    state = src.state_dict()
    path = tmp_path / "w.pt"
    torch.save(state if wrap is None else {wrap: state, "epoch": 3}, path)
    dst = create_backbone(name, in_chans=1, weights=path).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(src(x), dst(x))
    fresh = create_backbone(name, in_chans=1).eval()
    with torch.no_grad():
        assert not torch.allclose(fresh(x), dst(x))  # the load really changed something


def test_source_classifier_ignored_and_rgb_conv_adapted(tmp_path):
    import timm
    rgb = timm.create_model("resnet10t", pretrained=False, num_classes=10)  # with a 10-way fc
    path = tmp_path / "rgb.pt"
    torch.save(rgb.state_dict(), path)
    gray = create_backbone("resnet10t", in_chans=1, weights=path)
    first = "conv1.0.weight"  # resnet10t has a deep stem
    assert torch.allclose(gray.state_dict()[first],
                          rgb.state_dict()[first].sum(dim=1, keepdim=True))


def test_missing_weight_file_names_path(tmp_path):
    path = tmp_path / "nowhere" / "resnet.pt"
    with pytest.raises(MedxferInputError, match="not found") as info:
        create_backbone("tiny_cnn", weights=path)
    assert str(path) in str(info.value) and info.value.path == str(path)


def test_strict_mismatch_error(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(create_backbone("torchvision:mobilenet_v3_small").state_dict(), path)
    with pytest.raises(MedxferInputError, match="do not match the architecture") as info:
        create_backbone("tiny_cnn", weights=path)
    assert "missing keys" in str(info.value) and "unexpected keys" in str(info.value)
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    bad = create_backbone("tiny_cnn").state_dict()
    bad["features.0.weight"] = torch.zeros(32, 3, 5, 5)
    torch.save(bad, path)
    with pytest.raises(MedxferInputError, match="shape mismatches: features.0.weight"):
        create_backbone("tiny_cnn", weights=path)


def test_not_a_state_dict_and_unknown_name(tmp_path):
    path = tmp_path / "x.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(MedxferInputError, match="expected a state dict"):
        create_backbone("tiny_cnn", weights=path)
    with pytest.raises(ValueError, match="unknown backbone 'no_such_net'"):
        create_backbone("no_such_net")
    with pytest.raises(ValueError, match="unknown torchvision"):
        create_backbone("torchvision:no_such_net")


def test_classifier_checkpoint_loads_with_and_without_head(tmp_path):
    src = create_backbone("tiny_cnn", in_chans=1, num_classes=3).eval()
    path = tmp_path / "finetuned.pt"
    torch.save({"state_dict": src.state_dict()}, path)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        tuned = create_backbone("tiny_cnn", in_chans=1, num_classes=3, weights=path).eval()
        assert torch.allclose(tuned(x), src(x))
        features = create_backbone("tiny_cnn", in_chans=1, weights=path).eval()
        assert torch.allclose(features(x), src.forward_features(x))
    # Another class count is a new task: the backbone loads, the head starts fresh.
    other = create_backbone("tiny_cnn", in_chans=1, num_classes=4, weights=path).eval()
    with torch.no_grad():
        assert torch.allclose(other.forward_features(x), src.forward_features(x))
    assert other.head.weight.shape[0] == 4


def test_source_classifier_kept_as_head_when_num_classes_given(tmp_path):
    import torchvision
    src = torchvision.models.resnet18(weights=None, num_classes=7).eval()
    path = tmp_path / "tv.pt"
    torch.save(src.state_dict(), path)
    model = create_backbone("torchvision:resnet18", weights=path, num_classes=7).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), src(x), atol=1e-5)
    # Fine-tuning on a 5-class target: ImageNet-style backbone loaded, head fresh.
    five = create_backbone("torchvision:resnet18", weights=path, num_classes=5).eval()
    with torch.no_grad():
        assert torch.allclose(five.forward_features(x), model.forward_features(x), atol=1e-5)
    assert five.head.weight.shape[0] == 5


def test_classifier_checkpoint_transfers_to_a_new_task(tmp_path):
    """A source model saved with a 4-way head fine-tunes on a 2-class target: the backbone
    loads, the head starts fresh; the same class count loads the head too."""
    import torch

    from medxfer.models import create_backbone

    src = create_backbone("tiny_cnn", in_chans=3, num_classes=4)
    path = tmp_path / "source.pt"
    torch.save(src.state_dict(), path)
    new = create_backbone("tiny_cnn", in_chans=3, num_classes=2, weights=path)
    for k, v in src.state_dict().items():
        if k.startswith("backbone."):
            assert torch.equal(new.state_dict()[k], v)
    assert new.head.weight.shape == (2, src.head.weight.shape[1])
    same = create_backbone("tiny_cnn", in_chans=3, num_classes=4, weights=path)
    assert torch.equal(same.head.weight, src.head.weight)

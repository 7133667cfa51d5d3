import numpy as np
import pytest
import timm
import torch
import torchvision.models as tvm
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from medxfer.transferability.extraction import (THESIS_FU_LAYERS, extract, fu_layers,
                                                head_layer)


def _loader(n=10, size=64, bs=4):
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(n, 3, size, size, generator=g),
                       torch.arange(n).reshape(n, 1) % 2)  # MedMNIST-style (N, 1) labels
    return DataLoader(ds, batch_size=bs, shuffle=False)


def test_resnet_features_are_the_fc_input_and_logits_its_output():
    torch.manual_seed(0)
    model = tvm.resnet18(num_classes=7)
    model.train()
    out = extract(model, _loader(), progress=False)
    assert out.features.shape == (10, 512) and out.logits.shape == (10, 7)
    assert out.features.dtype == np.float32 and out.labels.tolist() == [0, 1] * 5
    model.eval()
    x = torch.cat([b[0] for b in _loader()])
    with torch.no_grad():
        trunk = nn.Sequential(*list(model.children())[:-1])
        np.testing.assert_allclose(out.features, trunk(x).flatten(1).numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out.logits, model(x).numpy(), rtol=1e-4, atol=1e-5)
    assert model.training is False  # (set by the test itself)


def test_train_flag_restored_and_thesis_head_layers():
    torch.manual_seed(0)
    mob = tvm.mobilenet_v3_small(num_classes=5)
    mob.train()
    out = extract(mob, _loader(n=4, size=32), progress=False)
    assert mob.training and out.features.shape == (4, 576)  # whole classifier block hooked
    mnas = tvm.mnasnet0_5(num_classes=5)
    assert head_layer(mnas) is mnas.classifier[-1]  # classifier[-1] rule


def test_timm_generic_rule_is_forward_head_pre_logits():
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", pretrained=False, num_classes=4)
    out = extract(model, _loader(n=4, size=32), progress=False)
    x = torch.cat([b[0] for b in _loader(n=4, size=32)])
    model.eval()
    with torch.no_grad():
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
        np.testing.assert_allclose(out.features, pre.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out.logits, model(x).numpy(), rtol=1e-4, atol=1e-5)


_THESIS_ARCHS = {
    "resnet18": tvm.resnet18, "densenet121": tvm.densenet121,
    "efficientnet_v2_s": tvm.efficientnet_v2_s, "googlenet": tvm.googlenet,
    "mnasnet1_0": tvm.mnasnet1_0, "mobilenet_v3_small": tvm.mobilenet_v3_small,
    "vgg11": tvm.vgg11, "convnext_tiny": tvm.convnext_tiny,
    "shufflenet_v2_x0_5": tvm.shufflenet_v2_x0_5,
}


@pytest.mark.parametrize("arch", list(_THESIS_ARCHS))
def test_thesis_fu_pairs_are_the_first_two_convolutions(arch):
    with torch.device("meta"):  # structure only: no weights allocated or initialised
        kwargs = {"aux_logits": False, "init_weights": False} if arch == "googlenet" else {}
        model = _THESIS_ARCHS[arch](**kwargs)
    first, second = fu_layers(model)
    names = [n for cls, n in THESIS_FU_LAYERS.items() if isinstance(model, cls)][0]
    assert (first, second) == tuple(model.get_submodule(n) for n in names)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert (first, second) == (convs[0], convs[1])
    assert head_layer(model) is not None


def test_vgg16_falls_back_to_first_two_convolutions():
    with torch.device("meta"):
        model = tvm.vgg16()  # features[3] is a ReLU there, not the second conv
    assert fu_layers(model) == (model.features[0], model.features[2])


def test_unknown_model_needs_explicit_layer():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
    with pytest.raises(ValueError, match="layer='dotted.name'"):
        head_layer(model)
    assert head_layer(model, "1") is model[1]

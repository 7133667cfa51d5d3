import copy

import numpy as np
import pytest
import torch
import torchvision
from pytorch_metric_learning.losses import TripletMarginLoss
from torch import nn
from torch.utils.data import TensorDataset

from medxfer.transferability import get_metric
from medxfer.transferability.fu import fu_loader

from ._reference import fu_slow, spec_reference, triplet_loss_slow

fu = get_metric("fu")


def _tiny_resnet(seed=0):
    torch.manual_seed(seed)
    model = torchvision.models.resnet18(num_classes=3)  # random init; never downloads
    model.layer3 = model.layer4 = nn.Identity()  # keep the test fast
    model.fc = nn.Linear(128, 3)
    return model


def _data(n=26, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 3, 32, 32, generator=g), torch.arange(n) % 3)


def test_pml_triplet_loss_equals_enumerated_triplets():
    g = torch.Generator().manual_seed(1)
    emb, labels = torch.randn(9, 5, generator=g), torch.tensor([0, 0, 1, 1, 1, 2, 2, 0, 2])
    assert TripletMarginLoss()(emb, labels).item() == pytest.approx(
        triplet_loss_slow(emb, labels.tolist()).item(), rel=1e-5)


def test_matches_thesis_procedure_with_identity_head():
    model, data = _tiny_resnet(), _data()
    loader = fu_loader(data)
    assert loader.batch_size == 26 // 6  # floor(N/6); 7 batches, the last with 26 mod 6 = 2
    assert [len(b[1]) for b in loader] == [4] * 6 + [2]
    ref = copy.deepcopy(model)
    ref.fc = nn.Identity()
    expected = fu_slow(ref, ref.conv1, ref.layer1[0].conv1, list(loader))
    assert fu(model, loader, progress=False) == pytest.approx(expected, rel=1e-4)


def test_leaves_model_and_global_state_unchanged():
    model, data = _tiny_resnet(), _data()
    model.train()
    model.layer1.requires_grad_(False)
    model.conv1.weight.grad = torch.ones_like(model.conv1.weight)
    state = copy.deepcopy(model.state_dict())
    torch_rng, np_rng = torch.get_rng_state(), np.random.get_state()
    cudnn = (torch.backends.cudnn.enabled, torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark)
    value = fu(model, fu_loader(data), progress=False)
    assert value > 0
    assert model.training and all(m.training for m in model.modules())
    assert not model.layer1[0].conv1.weight.requires_grad and model.conv1.weight.requires_grad
    assert torch.equal(model.conv1.weight.grad, torch.ones_like(model.conv1.weight))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert torch.equal(torch_rng, torch.get_rng_state())
    new_np = np.random.get_state()
    assert np.array_equal(np_rng[1], new_np[1]) and np_rng[2] == new_np[2]
    assert cudnn == (torch.backends.cudnn.enabled, torch.backends.cudnn.deterministic,
                     torch.backends.cudnn.benchmark)
    # eval mode inside: the same value whatever mode the caller left the model in
    model.eval()
    assert fu(model, fu_loader(data), progress=False) == value


def test_explicit_layers_and_no_triplet_error():
    model, data = _tiny_resnet(), _data()
    by_name = fu(model, fu_loader(data), layers=("conv1", "layer1.0.conv1"), progress=False)
    assert by_name == fu(model, fu_loader(data), progress=False)
    swapped = fu(model, fu_loader(data), layers=("layer1.0.conv1", "conv1"), progress=False)
    assert swapped == pytest.approx(1 / by_name, rel=1e-6)
    one_class = TensorDataset(data.tensors[0], torch.zeros(26, dtype=torch.long))
    with pytest.raises(ValueError, match="no valid triplet"):
        fu(model, fu_loader(one_class), progress=False)


def test_equals_spec_reference_computation():
    # The reference backpropagates into every parameter; FU asks autograd for the two weights.
    g = torch.Generator().manual_seed(2)
    model = _tiny_resnet()
    data = TensorDataset(torch.randn(18, 3, 16, 16, generator=g), torch.tensor([0, 0, 1] * 6))
    expected = spec_reference.fu_reference(model, fu_loader(data), "conv1", "layer1.0.conv1")
    assert fu(model, fu_loader(data), progress=False) == pytest.approx(expected, rel=1e-6)

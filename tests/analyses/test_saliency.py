"""Grad-CAM on a model trained where only the lesion carries the label (issue 13 known answer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medxfer.analyses.attribution import feature_layer, saliency_maps
from medxfer.analyses.inputs import ModelRef, load_images, load_model, model_input
from medxfer.errors import MedxferInputError
from medxfer.evaluation.hit_rate import chance_rate, hit_rate


def _positives(lesion_root):
    im = load_images(lesion_root, "synthlesion", "test")  # held-out images
    masks = im.extras["masks"].astype(bool)
    pos = masks.any((1, 2))
    assert (im.labels[pos] == 1).all() and pos.sum() >= 15
    return im.x[pos], masks[pos]


def test_gradcam_hit_rate_is_at_least_twice_chance(lesion_root, lesion_weights):
    model = load_model(ModelRef("m", "tiny_cnn", lesion_weights[0]))
    x, masks = _positives(lesion_root)
    xt = model_input(x, model)
    name, layer = feature_layer(model, xt)
    assert name == "backbone.features"  # the final 7x7 feature map of tiny_cnn
    maps = saliency_maps(model, xt, torch.ones(len(x), dtype=torch.long), "gradcam", layer=layer)
    assert maps.shape == masks.shape and (maps >= 0).all()  # ReLU of the weighted maps
    rate, chance = hit_rate(maps, masks), chance_rate(masks)
    print(f"Grad-CAM hit rate {rate:.3f}, chance {chance:.3f}")
    assert chance < 0.1 and rate >= 2 * chance, (rate, chance)


def test_integrated_gradients_point_at_the_lesion_and_sum_to_the_score_gap(lesion_root,
                                                                           lesion_weights):
    from captum.attr import IntegratedGradients

    model = load_model(ModelRef("m", "tiny_cnn", lesion_weights[0]))
    x, masks = _positives(lesion_root)
    xt = model_input(x, model)
    maps = saliency_maps(model, xt, torch.ones(len(x), dtype=torch.long), "ig", n_steps=16)
    assert hit_rate(maps, masks) >= 2 * chance_rate(masks)
    # completeness (Sundararajan et al.): attributions sum to f(x) - f(baseline)
    attr = IntegratedGradients(model).attribute(xt[:2], target=1, n_steps=64)
    with torch.no_grad():
        gap = model(xt[:2])[:, 1] - model(torch.zeros_like(xt[:2]))[:, 1]
    assert torch.allclose(attr.sum((1, 2, 3)), gap, atol=0.05 * float(gap.abs().max()) + 1e-3)


def test_an_untrained_model_is_not_better_than_a_trained_one(lesion_root, lesion_weights):
    from medxfer.models import create_backbone

    torch.manual_seed(3)
    untrained = create_backbone("tiny_cnn", in_chans=1, num_classes=2).eval()
    trained = load_model(ModelRef("m", "tiny_cnn", lesion_weights[0]))
    x, masks = _positives(lesion_root)
    xt = torch.from_numpy(x)
    rates = [hit_rate(saliency_maps(m, xt, torch.ones(len(x), dtype=torch.long), "gradcam",
                                    layer=feature_layer(m, xt)[1]), masks)
             for m in (untrained, trained)]
    assert rates[1] > rates[0]


def test_unknown_method_and_layer():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(),
                                torch.nn.LazyLinear(2))
    x = torch.rand(2, 1, 8, 8)
    model(x)
    with pytest.raises(MedxferInputError, match="unknown saliency method 'lime'"):
        saliency_maps(model, x, torch.zeros(2, dtype=torch.long), "lime")
    with pytest.raises(MedxferInputError, match="unknown layer 'nope'"):
        feature_layer(model, x, "nope")
    assert feature_layer(model, x)[0] == "0"
    assert np.isfinite(saliency_maps(model, x, torch.zeros(2, dtype=torch.long), "gradcam",
                                     layer=model[0])).all()


def test_gradcam_cells_sit_on_their_receptive_field_centres():
    """tiny_cnn's 7x7 cell (3, 3) sees input pixels 8..16 (centre 12); the upsampled map of
    that cell alone peaks there, where captum's interpolate puts it 1.5 px down-right."""
    from captum.attr import LayerAttribution

    from medxfer.analyses.attribution import upsample_to_input
    from medxfer.models import create_backbone

    torch.manual_seed(0)
    net = create_backbone("tiny_cnn", in_chans=1, num_classes=2).eval()
    x = torch.rand(1, 1, 28, 28, requires_grad=True)
    net.backbone.features(x)[0, :, 3, 3].sum().backward()
    rows, cols = np.nonzero(x.grad[0, 0].abs().numpy() > 0)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (8, 16, 8, 16)
    hot = torch.zeros(1, 1, 7, 7)
    hot[0, 0, 3, 3] = 1.0
    ours = upsample_to_input(hot, (28, 28))[0, 0]
    assert np.unravel_index(int(ours.argmax()), (28, 28)) == (12, 12)
    assert ours[12, 12] == 1.0 and ours[12, 14] == pytest.approx(0.5)  # linear between cells
    theirs = LayerAttribution.interpolate(hot, (28, 28), interpolate_mode="bilinear")[0, 0]
    peak = theirs.max()
    assert sorted({int(r) for r in torch.nonzero(theirs == peak)[:, 0]}) == [13, 14]
    big = torch.rand(2, 3, 7, 7)  # the corner cells keep their values, nothing leaks
    up = upsample_to_input(big, (28, 28))
    assert torch.allclose(up[:, :, 0, 0], big[:, :, 0, 0])
    assert torch.allclose(up[:, :, 24, 24], big[:, :, 6, 6])

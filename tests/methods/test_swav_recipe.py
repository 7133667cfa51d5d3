"""swav's seed-001 recipe: multi-crop views reach the loss, codes only from the large crops,
prototypes frozen for a number of iterations, LARS with the per-iteration warm-up + cosine."""

from __future__ import annotations

import pytest
import torch
from train_helpers import load_state, make_config

from medxfer.methods import swav
from medxfer.methods.swav_recipe import IterationSchedule, RECIPES
from medxfer.models.optim import warmup_cosine_lr
from medxfer.train.launcher import run_local

# 2 x 32 + 4 x 16 crops of the 28 px images; 32 training images in batches of 8: 4 iterations
# per epoch.
MC = {"recipe": "seed001", "crops": [2, 4], "crop_sizes": [32, 16], "n_prototypes": 20,
      "queue_length": 0, "warmup_epochs": 1, "freeze_prototypes_iters": 6}


@pytest.fixture(scope="module")
def spied(synth_root, tmp_path_factory):
    """One 2-epoch run with spies on the views, the code inputs and the freeze decisions."""
    mp = pytest.MonkeyPatch()
    seen = {"views": [], "codes": [], "predicted": [], "frozen": [], "prototypes": []}
    real_major, real_codes, real_pred = swav.modality_major, swav.queue_codes, \
        swav.swapped_prediction
    real_frozen, real_forward = IterationSchedule.frozen, swav.SwaVNet.forward

    def forward(self, views):
        if torch.is_grad_enabled():  # training steps: the prototypes before the step
            seen["prototypes"].append(self.prototypes.weight.detach().clone())
        return real_forward(self, views)

    def major(v):
        seen["views"].append(tuple(v.shape[-2:]))
        return real_major(v)

    def codes(scores, *args, **kwargs):
        seen["codes"].append(scores.data_ptr())
        return real_codes(scores, *args, **kwargs)

    def predicted(scores, q, temperature, assign=None):
        seen["predicted"].append(([s.data_ptr() for s in scores], list(assign)))
        return real_pred(scores, q, temperature, assign)

    def frozen(self):
        seen["frozen"].append((self.now, real_frozen(self)))
        return real_frozen(self)

    mp.setattr(swav, "modality_major", major)
    mp.setattr(swav, "queue_codes", codes)
    mp.setattr(swav, "swapped_prediction", predicted)
    mp.setattr(IterationSchedule, "frozen", frozen)
    mp.setattr(swav.SwaVNet, "forward", forward)
    cfg = make_config(synth_root, "swav", epochs=2, lr=0.6, method_config=MC)
    try:
        run = run_local(cfg, storage_dir=tmp_path_factory.mktemp("swav-recipe"))
    finally:
        mp.undo()
    return run, seen


def test_six_views_of_two_sizes_reach_the_loss(spied):
    _, seen = spied
    steps = len(seen["predicted"])
    assert steps > 0 and len(seen["views"]) == 6 * steps
    for i in range(steps):
        assert seen["views"][6 * i: 6 * i + 6] == [(32, 32)] * 2 + [(16, 16)] * 4


def test_codes_come_only_from_the_two_large_crops(spied):
    _, seen = spied
    assert len(seen["codes"]) == 2 * len(seen["predicted"])
    for i, (ptrs, assign) in enumerate(seen["predicted"]):
        assert assign == [0, 1]
        assert seen["codes"][2 * i: 2 * i + 2] == [ptrs[0], ptrs[1]]  # scores of views 0 and 1


def test_prototypes_frozen_for_the_first_iterations_counted_across_epochs(spied):
    run, seen = spied
    assert [f for _, f in seen["frozen"]] == [True] * 6 + [False] * 2
    assert [it for it, _ in seen["frozen"]] == list(range(8))
    before = seen["prototypes"]  # before iterations 0..7
    assert len(before) == 8
    for w in before[1:7]:  # iterations 0-5 (the first one of epoch 2 too) leave them as they are
        assert torch.allclose(w, before[0], atol=1e-6)
    assert (before[7] - before[6]).abs().max() > 1e-4  # iteration 6 moved them
    assert int(load_state(run.checkpoints[0])["modules"]["schedule"]["iteration"]) == 4


def test_lars_and_the_logged_rate_follow_the_per_iteration_schedule(spied):
    run, _ = spied
    epochs = [h for h in run.history if "selected_epoch" not in h]
    # lr 0.6 -> 0.0006: warm-up over the first epoch (4 iterations), cosine over the rest.
    expected = [warmup_cosine_lr(it, 8, base_lr=0.6, final_lr=0.0006, warmup_iters=4)
                for it in (0, 4)]
    assert [h["lr"] for h in epochs] == pytest.approx(expected)
    assert expected[1] == pytest.approx(0.6)
    state = load_state(run.checkpoints[-1])
    assert "trust_coeff" in state["optimizer"]["param_groups"][0]  # timm's Lars


def test_recipes_fill_only_the_fields_left_out():
    seed = swav.SwaVOptions()
    assert seed.crops == [2, 6] and seed.crops_for_assign == [0, 1]
    assert seed.optimizer == "lars" and seed.freeze_prototypes_iters == 10_000
    assert seed.final_lr == pytest.approx(0.0006) and seed.augment == "medical_ssl"
    simple = swav.SwaVOptions(recipe="simple", crops=[2, 2])
    assert simple.crops == [2, 2] and simple.optimizer == RECIPES["simple"]["optimizer"]
    with pytest.raises(ValueError, match="crops_for_assign"):
        swav.SwaVOptions(crops=[1, 2], crops_for_assign=[0, 5])

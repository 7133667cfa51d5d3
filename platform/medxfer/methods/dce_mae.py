"""dce_mae: DCE -> MAE on the DCE-enhanced target, as one resumable trial.

Seed ``000_3dd3de5c534b555f.txt`` sec. 4, Table 2, row "DCE+MAE": the masked autoencoder
baseline pretrained on contrast-enhanced images. Stage 1 trains the DCE U-Net on the target's
unlabelled images (sec. 3.1, the ``dce`` method, Adam at ``dce_lr``, optionally after text
removal); stage 2 pretrains a ViT as the ``mae`` method does on the same images with the trained
DCE first in the pipeline (``data.transforms`` after it; default: crop 0.6-1.0, rotation up to
15 degrees, flip). ``train.epochs`` is the total: ``dce_epochs`` + MAE epochs (the rest).

The stages run as a :class:`~medxfer.methods.pipeline.Pipeline`: one global step, ``stage``
(0 dce, 1 mae) in every report, the stage marker ``dce_mae_stage.json`` and the DCE's
``dce_mae/dce.pt`` in every checkpoint after stage 1. The final checkpoint holds the MAE's
``encoder.pt`` (the ViT, for ``finetune``/``segment`` through ``model.weights``) beside
``dce_mae/dce.pt``: a downstream run puts ``{name: dce, weights: .../dce_mae/dce.pt}`` first in
its ``data.transforms``/``data.eval_transforms`` to see the images the encoder was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from medxfer.errors import MedxferInputError
from medxfer.methods import mae
from medxfer.methods.contrastive import default_transforms
from medxfer.methods.experiment import method_options, parse_experiment
from medxfer.methods.pipeline import Pipeline, run_stages
from medxfer.methods.registry import Method, register_method
from medxfer.methods.scc import PRETRAIN_SELECTION, DCEStageOptions, dce_stage

PIPELINE = Pipeline(stages=("dce", "mae"), artifacts={"dce": "dce.pt"},
                    stage_file="dce_mae_stage.json", carry_dir="dce_mae")


class DCEMAEOptions(DCEStageOptions):
    """``method_config`` of dce_mae (the DCE stage's as
    :class:`~medxfer.methods.scc.DCEStageOptions`; MAE gets the rest of ``train.epochs``).

    Attributes:
        mae: further ``method_config`` of the MAE stage.
    """

    mae: dict[str, Any] = Field(default_factory=dict)


def stage_config(cfg, opts: DCEMAEOptions, stage: str, carry: Path, mae_epochs: int) -> dict:
    """The experiment config of one stage's method (a plain dict for its loop)."""
    raw = cfg.model_dump()
    if stage == "dce":
        return parse_experiment(dce_stage(raw, opts), source="dce_mae stage dce").model_dump()
    d = raw["data"]
    dce = [{"name": "dce", "weights": str(carry / PIPELINE.artifacts["dce"])}]
    d.update(transforms=dce + (d["transforms"] or default_transforms(d["size"])),
             eval_transforms=dce + (d["eval_transforms"] or []))
    raw["train"].update(PRETRAIN_SELECTION, epochs=mae_epochs)
    raw.update(method="mae", method_config=dict(opts.mae))
    return parse_experiment(raw, source="dce_mae stage mae").model_dump()


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """DCE -> MAE; see the module docstring."""
    cfg = parse_experiment(config)
    opts: DCEMAEOptions = method_options(cfg)
    mae_epochs = cfg.train.epochs - opts.dce_epochs
    if mae_epochs < 1:
        raise MedxferInputError(f"train.epochs ({cfg.train.epochs}) must exceed dce_epochs "
                                f"({opts.dce_epochs}): the rest are MAE epochs",
                                field="train.epochs")
    run_stages(PIPELINE, lambda stage, carry: stage_config(cfg, opts, stage, carry, mae_epochs))


METHOD = register_method(Method(
    name="dce_mae", train_loop_per_worker=train_loop_per_worker, config_schema=DCEMAEOptions,
    defaults=mae.DEFAULTS,
    description="DCE+MAE: DCE, then MAE on DCE-enhanced images (staged); saves the ViT"))

"""scc: DCE -> SimCLR on the DCE-enhanced target -> fine-tuning, as one resumable trial.

Seed ``000_3dd3de5c534b555f.txt`` (SCC, Fig. 2b): (1) train the DCE U-Net on the target's
unlabelled images (sec. 3.1, the ``dce`` method); (2) adapt the (source pre-trained) encoder
by SimCLR on the unlabelled target images with the trained DCE first in the pipeline
(sec. 3.2, eq. 9, the ``simclr`` method, ``temperature``); (3) fine-tune that encoder on the
labelled target, again on DCE-enhanced images (the ``finetune`` method). Stage 1 trains with
Adam at ``dce_lr``; stages 2 and 3 use ``train.*``, App. B's search space: Adam, lr, weight
decay, batch size and LambdaLR (``train.scheduler: lambda`` is the default here, so a
searched ``lambda_lr`` takes effect: the lr of a stage's epoch e, 0-based, is
``lr * lambda_lr ** e``).

The recipe (seed 000):

* Text removal (sec. 3.1, stage 1: EasyOCR + inpainting) runs in every stage when enabled
  (``text_removal``: ``auto``, ``classical``, ``easyocr``): the DCE stage trains on
  text-removed images, and its ``dce.pt`` records the detector, so the ``dce`` transform of
  stages 2 and 3 removes text before enhancing.
* Augmentation (App. B): random crop of 0.6-1.0 of the image resized to ``data.size``, random
  rotation up to 15 degrees (:func:`app_b_transforms`) in SimCLR and fine-tuning when
  ``data.transforms`` is not given; with the ``xrv_densenet121`` backbone, pixels are mapped to
  TorchXRayVision's [-1024, 1024] (``xrv_scale``) in training and evaluation.

The stages run as a :class:`~medxfer.methods.pipeline.Pipeline` (:mod:`.pipeline`): one global
step over ``train.epochs`` (``dce_epochs`` + ``simclr_epochs`` + fine-tuning epochs, the
rest), every report carrying ``stage`` (0 dce, 1 simclr, 2 finetune), every checkpoint the stage
marker (``scc_stage.json``) plus the finished stages' artifacts (``scc/dce.pt``,
``scc/encoder.pt``). ``simclr_epochs: 0`` leaves the SimCLR stage out (Table 2's DCE*: DCE
enhancement, then supervised fine-tuning of ``model.weights``; stages 0 and 2, no
``scc/encoder.pt``); the fine-tuning's final step is the trial's last step: the selected
model's val and test metrics (DESIGN.md), with ``model.pt``. The run's data params
(``n_train``, ...) are the fine-tuning stage's (its labelled images under a study's label
fraction); the two pretraining stages train on every training image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from medxfer.errors import MedxferInputError
from medxfer.methods import finetune
from medxfer.methods.experiment import method_options, parse_experiment
from medxfer.methods.pipeline import Pipeline, run_stages
from medxfer.methods.registry import Method, MethodOptions, register_method

PIPELINE = Pipeline(stages=("dce", "simclr", "finetune"),
                    artifacts={"dce": "dce.pt", "simclr": "encoder.pt"},
                    stage_file="scc_stage.json", carry_dir="scc")
#: ``simclr_epochs: 0`` (seed 000 Table 2's DCE*): DCE, then fine-tuning from ``model.weights``.
DCE_FT = Pipeline(stages=("dce", "finetune"), artifacts={"dce": "dce.pt"},
                  stage_file=PIPELINE.stage_file, carry_dir=PIPELINE.carry_dir, numbers=(0, 2))
STAGES, STAGE_FILE, CARRY_DIR = PIPELINE.stages, PIPELINE.stage_file, PIPELINE.carry_dir
ARTIFACTS = PIPELINE.artifacts


class DCEStageOptions(MethodOptions):
    """``method_config`` of a pipeline whose first stage is DCE (``scc``, ``dce_mae``).

    Attributes:
        dce_epochs: DCE stage length.
        dce_lr: Adam learning rate of the DCE stage.
        text_removal: ``none``, or the detector run before DCE in every stage (``auto``,
            ``classical``, ``easyocr``).
        text_model_dir: EasyOCR's local model directory (never downloaded).
        dce: further ``method_config`` of the DCE stage.
    """

    dce_epochs: int = Field(5, ge=1)
    dce_lr: float = Field(1e-3, gt=0)
    text_removal: Literal["none", "auto", "classical", "easyocr"] = "none"
    text_model_dir: str | None = None
    dce: dict[str, Any] = Field(default_factory=dict)


class SCCOptions(DCEStageOptions):
    """``method_config`` of scc (the DCE stage's as :class:`DCEStageOptions`).

    Attributes:
        simclr_epochs: SimCLR stage length; fine-tuning gets the rest of ``train.epochs``.
            0: no SimCLR stage (seed 000 Table 2's DCE*: DCE, then supervised fine-tuning of
            ``model.weights``); the run's param ``simclr_epochs`` is 0 and no step reports
            stage 1.
        temperature: SimCLR's tau (eq. 9).
        simclr, finetune: further ``method_config`` of each stage's method.
    """

    simclr_epochs: int = Field(20, ge=0)
    temperature: float = Field(0.5, gt=0)
    simclr: dict[str, Any] = Field(default_factory=dict)
    finetune: dict[str, Any] = Field(default_factory=dict)


DEFAULTS: dict[str, Any] = {"train": {**finetune.DEFAULTS["train"], "epochs": 50,
                                      "optimizer": "adam", "scheduler": "lambda"}}


def app_b_transforms(size: int, xrv: bool) -> list[dict]:
    """Seed 000 App. B training augmentation: crop 0.6-1.0 resized to ``size``, rotation up to
    15 degrees, and TorchXRayVision's pixel range for its backbone."""
    spec = [{"name": "random_resized_crop", "size": size, "scale": [0.6, 1.0]},
            {"name": "random_rotation", "degrees": 15}]
    return spec + ([{"name": "xrv_scale"}] if xrv else [])


def _xrv(cfg) -> bool:
    return cfg.model.backbone == "xrv_densenet121"


#: Selection of a pretraining stage: its own loss.
PRETRAIN_SELECTION = {"early_stopping_metric": "val_loss", "early_stopping_mode": "min",
                      "select_by": "val_loss", "mode": "min"}


def dce_stage(raw: dict, opts) -> dict:
    """Turn ``raw`` (the run's config dump) into the DCE stage's, in place: ``dce_epochs`` of
    Adam at ``dce_lr`` on untransformed images; ``method_config`` is ``opts.dce`` plus the
    run's ``text_removal``. Returns ``raw``."""
    mc = dict(opts.dce)
    if opts.text_removal != "none":
        mc.update(text_removal=opts.text_removal, text_model_dir=opts.text_model_dir)
    raw["train"].update(PRETRAIN_SELECTION, epochs=opts.dce_epochs, optimizer="adam",
                        lr=opts.dce_lr, scheduler="none", weight_decay=0.0, patience=None)
    raw["data"].update(transforms=None, eval_transforms=None)
    raw.update(method="dce", method_config=mc)
    return raw


def stage_config(cfg, opts: SCCOptions, stage: str, carry: Path, ft_epochs: int) -> dict:
    """The experiment config of one stage's method (a plain dict for its loop)."""
    raw = cfg.model_dump()
    d, t = raw["data"], raw["train"]
    if stage == "dce":
        return parse_experiment(dce_stage(raw, opts), source="scc stage dce").model_dump()
    dce = [{"name": "dce", "weights": str(carry / ARTIFACTS["dce"])}]
    xrv = [{"name": "xrv_scale"}] if _xrv(cfg) else []
    train_t = d["transforms"] or app_b_transforms(d["size"], _xrv(cfg))
    d.update(transforms=dce + train_t, eval_transforms=dce + (d["eval_transforms"] or xrv))
    if stage == "simclr":
        mc = {**opts.simclr, "temperature": opts.temperature}
        t.update(PRETRAIN_SELECTION, epochs=opts.simclr_epochs)
    else:
        mc = dict(opts.finetune)
        t.update(epochs=ft_epochs)
        if opts.simclr_epochs:  # else fine-tuning starts from the run's model.weights
            raw["model"]["weights"] = str(carry / ARTIFACTS["simclr"])
    raw.update(method=stage, method_config=mc)
    return parse_experiment(raw, source=f"scc stage {stage}").model_dump()


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """DCE -> SimCLR -> fine-tuning; see the module docstring."""
    cfg = parse_experiment(config)
    opts: SCCOptions = method_options(cfg)
    ft_epochs = cfg.train.epochs - opts.dce_epochs - opts.simclr_epochs
    if ft_epochs < 1:
        raise MedxferInputError(
            f"train.epochs ({cfg.train.epochs}) must exceed dce_epochs + simclr_epochs "
            f"({opts.dce_epochs} + {opts.simclr_epochs}): the rest are fine-tuning epochs",
            field="train.epochs")
    run_stages(PIPELINE if opts.simclr_epochs else DCE_FT,
               lambda stage, carry: stage_config(cfg, opts, stage, carry, ft_epochs))


METHOD = register_method(Method(
    name="scc", train_loop_per_worker=train_loop_per_worker, config_schema=SCCOptions,
    defaults=DEFAULTS,
    description="SCC: DCE -> SimCLR on DCE-enhanced target images -> fine-tuning (staged)"))

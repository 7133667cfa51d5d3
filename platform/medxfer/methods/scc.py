"""scc: DCE -> SimCLR on the DCE-enhanced target -> fine-tuning, as one resumable trial.

Seed ``000_3dd3de5c534b555f.txt`` (SCC, Fig. 2b): (1) train the DCE U-Net on the target's
unlabelled images (sec. 3.1, the ``dce`` method); (2) adapt the (source pre-trained) encoder
by SimCLR on the unlabelled target images with the trained DCE first in the pipeline
(sec. 3.2, eq. 9, the ``simclr`` method, ``temperature``); (3) fine-tune that encoder on the
labelled target, again on DCE-enhanced images (the ``finetune`` method). App. B's search space
(Adam, lr, weight decay, LambdaLR lambda, batch size) applies to ``train.*``, which stages 2
and 3 use; stage 1 trains with Adam at ``dce_lr``.

Each stage *is* the registered method's loop, run under a :class:`StageSession` that forwards
its per-epoch reports to this run's session with one global step: ``train.epochs`` is the
total, ``dce_epochs`` + ``simclr_epochs`` + fine-tuning epochs (the rest). Every report carries
``stage`` (0 dce, 1 simclr, 2 finetune) and every checkpoint the stage marker
(``scc_stage.json``) plus the artifacts of the finished stages (``scc/dce.pt``,
``scc/encoder.pt``), so a restart resumes inside the right stage with what it needs. Epoch
counters in checkpoints (``state.pt`` progress) are global too, shifted back on resume. A stage's
own final step (its selected model) is kept as the next stage's input, not reported; the
fine-tuning's final step is the trial's last step: the selected model's val and test metrics
(DESIGN.md), with ``model.pt``. The run's data params (``n_train``, ...) are the fine-tuning
stage's (its labelled images under a study's label fraction); the two pretraining stages train
on every training image.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import Field

from medxfer.config import REPORT_PARAMS
from medxfer.errors import MedxferInputError
from medxfer.methods import finetune
from medxfer.methods.experiment import method_options, parse_experiment
from medxfer.methods.registry import Method, MethodOptions, get_method, register_method
from medxfer.methods.session import Session, get_session, use_session

STAGES = ("dce", "simclr", "finetune")
STAGE_FILE = "scc_stage.json"
CARRY_DIR = "scc"
ARTIFACTS = {"dce": "dce.pt", "simclr": "encoder.pt"}  # stage -> the file the next one needs


class SCCOptions(MethodOptions):
    """``method_config`` of scc.

    Attributes:
        dce_epochs, simclr_epochs: stage lengths; fine-tuning gets the rest of
            ``train.epochs``.
        temperature: SimCLR's tau (eq. 9).
        dce_lr: Adam learning rate of the DCE stage.
        dce, simclr, finetune: further ``method_config`` of each stage's method.
    """

    dce_epochs: int = Field(5, ge=1)
    simclr_epochs: int = Field(20, ge=1)
    temperature: float = Field(0.5, gt=0)
    dce_lr: float = Field(1e-3, gt=0)
    dce: dict[str, Any] = Field(default_factory=dict)
    simclr: dict[str, Any] = Field(default_factory=dict)
    finetune: dict[str, Any] = Field(default_factory=dict)


DEFAULTS: dict[str, Any] = {"train": {**finetune.DEFAULTS["train"], "epochs": 50}}


class StageSession:
    """One stage's view of the run's session (see the module docstring).

    Args:
        outer: the run's session.
        index: stage number (0, 1, 2).
        offset: global epochs before this stage.
        carry: directory of the finished stages' artifacts.
        resume: checkpoint to resume this stage from (None: fresh).
        last: the last stage's final step is forwarded as the run's final step.

    Attributes:
        next_offset: after the stage, the global epoch its last epoch had.
    """

    def __init__(self, outer: Session, index: int, offset: int, carry: Path,
                 resume: str | None, last: bool):
        self.outer, self.index, self.offset, self.carry = outer, index, offset, carry
        self.resume, self.last, self.next_offset = resume, last, offset
        self.world_rank, self.world_size = outer.world_rank, outer.world_size
        self.device = outer.device

    def __getattr__(self, name: str):  # prepare_model, prepare_loader, all_reduce_mean, ...
        return getattr(self.outer, name)

    def get_checkpoint(self) -> str | None:
        """The resume checkpoint with its progress shifted back to this stage's epochs."""
        if self.resume is None:
            return None
        local = self.carry.parent / f"resume-{STAGES[self.index]}"
        shutil.copytree(self.resume, local, dirs_exist_ok=True)
        _shift_progress(local, -self.offset)
        return str(local)

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None = None) -> None:
        final = "selected_epoch" in metrics
        if final:
            self.next_offset = self.offset + int(metrics["epoch"]) - 1
        if final and not self.last:  # the stage's selected model: keep its artifact
            name = ARTIFACTS[STAGES[self.index]]
            if checkpoint_dir is not None:
                shutil.copy2(Path(checkpoint_dir) / name, self.carry / name)
            _share(self.carry, name)
            return
        out = dict(metrics, epoch=int(metrics["epoch"]) + self.offset, stage=self.index)
        if not self.last:  # the run's data params are those of the fine-tuning stage
            for key in REPORT_PARAMS:
                out.pop(key, None)
        if final:
            out["selected_epoch"] = int(metrics["selected_epoch"]) + self.offset
        if checkpoint_dir is not None:
            _shift_progress(Path(checkpoint_dir), self.offset)  # global epochs outside
            shutil.copytree(self.carry, Path(checkpoint_dir) / CARRY_DIR, dirs_exist_ok=True)
            (Path(checkpoint_dir) / STAGE_FILE).write_text(json.dumps(
                {"stage": STAGES[self.index], "offset": self.offset}))
        self.outer.report(out, checkpoint_dir)


def _shift_progress(directory: Path, offset: int) -> None:
    """Add ``offset`` to the epoch counters of the checkpoint's ``state.pt`` (in place)."""
    import torch

    from medxfer.methods.checkpoint import STATE_FILE

    path = directory / STATE_FILE
    state = torch.load(path, map_location="cpu", weights_only=True)
    p = state["progress"]
    p["epoch"] += offset
    if p["best_epoch"]:
        p["best_epoch"] += offset
    torch.save(state, path)


def _share(carry: Path, name: str) -> None:
    """Several workers: rank 0 holds the stage's artifact; send it to every rank."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    blob = [(carry / name).read_bytes() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(blob, src=0)
    if dist.get_rank() != 0:
        (carry / name).write_bytes(blob[0])


def stage_config(cfg, opts: SCCOptions, stage: str, carry: Path, ft_epochs: int) -> dict:
    """The experiment config of one stage's method (a plain dict for its loop)."""
    from medxfer.methods.contrastive import default_transforms

    raw = cfg.model_dump()
    d, t = raw["data"], raw["train"]
    dce = [{"name": "dce", "weights": str(carry / ARTIFACTS["dce"])}]
    pretrain_selection = {"early_stopping_metric": "val_loss", "early_stopping_mode": "min",
                          "select_by": "val_loss", "mode": "min"}
    if stage == "dce":
        mc = dict(opts.dce)
        t.update(pretrain_selection, epochs=opts.dce_epochs, optimizer="adam", lr=opts.dce_lr,
                 scheduler="none", weight_decay=0.0, patience=None)
        d.update(transforms=None, eval_transforms=None)
    elif stage == "simclr":
        mc = {**opts.simclr, "temperature": opts.temperature}
        t.update(pretrain_selection, epochs=opts.simclr_epochs)
        d.update(transforms=dce + (d["transforms"] or default_transforms(d["size"])),
                 eval_transforms=dce + (d["eval_transforms"] or []))
    else:
        mc = dict(opts.finetune)
        t.update(epochs=ft_epochs)
        d.update(transforms=dce + (d["transforms"] or []),
                 eval_transforms=dce + (d["eval_transforms"] or []))
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
    outer = get_session()
    work = Path(tempfile.mkdtemp(prefix="medxfer-scc-"))
    carry = work / CARRY_DIR
    carry.mkdir()
    try:
        resume = outer.get_checkpoint()
        meta = {"stage": STAGES[0], "offset": 0}
        if resume is not None:
            meta = json.loads((Path(resume) / STAGE_FILE).read_text())
            shutil.copytree(Path(resume) / CARRY_DIR, carry, dirs_exist_ok=True)
        start, offset = STAGES.index(meta["stage"]), int(meta["offset"])
        for i in range(start, len(STAGES)):
            session = StageSession(outer, i, offset, carry, resume if i == start else None,
                                   last=i == len(STAGES) - 1)
            with use_session(session):
                get_method(STAGES[i]).train_loop_per_worker(
                    stage_config(cfg, opts, STAGES[i], carry, ft_epochs))
            offset = session.next_offset
    finally:
        shutil.rmtree(work, ignore_errors=True)


METHOD = register_method(Method(
    name="scc", train_loop_per_worker=train_loop_per_worker, config_schema=SCCOptions,
    defaults=DEFAULTS,
    description="SCC: DCE -> SimCLR on DCE-enhanced target images -> fine-tuning (staged)"))

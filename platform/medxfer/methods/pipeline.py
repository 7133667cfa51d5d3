"""Staged methods: registered methods run one after another as one resumable trial.

A :class:`Pipeline` (``scc``: dce -> simclr -> finetune; ``dce_mae``: dce -> mae) runs each
stage as *the registered method's own loop*, under a :class:`StageSession` that forwards the
stage's per-epoch reports to the run's session with one global step: ``train.epochs`` is the
total over the stages. Every report carries ``stage`` (its index) and every checkpoint the
stage marker (``Pipeline.stage_file``) plus the artifacts of the finished stages (under
``Pipeline.carry_dir``), so a restart resumes inside the right stage with what it needs. Epoch
counters in checkpoints (``state.pt`` progress) are global too, shifted back on resume. A
stage's own final step (its selected model) is kept as the next stage's input, not reported;
the last stage's final step is the trial's last step (DESIGN.md: the selected model). The run's
data params (``n_train``, ... :data:`medxfer.config.REPORT_PARAMS`) are the last stage's.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from medxfer.config import REPORT_PARAMS
from medxfer.methods.registry import get_method
from medxfer.methods.session import Session, get_session, use_session


@dataclass(frozen=True)
class Pipeline:
    """The stages of a staged method.

    Attributes:
        stages: registered method names, in order.
        artifacts: stage -> the file of its final checkpoint the next stages need.
        stage_file: the stage marker written into every checkpoint.
        carry_dir: the checkpoint folder holding the finished stages' artifacts.
        numbers: the ``stage`` each stage reports (default: its index), so a pipeline that
            leaves a stage out keeps the full pipeline's numbers.
    """

    stages: tuple[str, ...]
    artifacts: Mapping[str, str]
    stage_file: str
    carry_dir: str
    numbers: tuple[int, ...] | None = None

    def number(self, index: int) -> int:
        """The ``stage`` reported by stage ``index``."""
        return index if self.numbers is None else self.numbers[index]


class StageSession:
    """One stage's view of the run's session (see the module docstring).

    Args:
        pipeline: the stages.
        outer: the run's session.
        index: stage number.
        offset: global epochs before this stage.
        carry: directory of the finished stages' artifacts.
        resume: checkpoint to resume this stage from (None: fresh).

    Attributes:
        next_offset: after the stage, the global epoch its last epoch had.
    """

    def __init__(self, pipeline: Pipeline, outer: Session, index: int, offset: int,
                 carry: Path, resume: str | None):
        self.pipeline, self.outer, self.index, self.offset = pipeline, outer, index, offset
        self.carry, self.resume, self.next_offset = carry, resume, offset
        self.last = index == len(pipeline.stages) - 1
        self.world_rank, self.world_size = outer.world_rank, outer.world_size
        self.device = outer.device

    def __getattr__(self, name: str):  # prepare_model, prepare_loader, all_reduce_mean, ...
        return getattr(self.outer, name)

    def get_checkpoint(self) -> str | None:
        """The resume checkpoint with its progress shifted back to this stage's epochs."""
        if self.resume is None:
            return None
        local = self.carry.parent / f"resume-{self.pipeline.stages[self.index]}"
        shutil.copytree(self.resume, local, dirs_exist_ok=True)
        shift_progress(local, -self.offset)
        return str(local)

    def report(self, metrics: dict[str, float], checkpoint_dir: str | None = None) -> None:
        final = "selected_epoch" in metrics
        if final:
            self.next_offset = self.offset + int(metrics["epoch"]) - 1
        if final and not self.last:  # the stage's selected model: keep its artifact
            name = self.pipeline.artifacts[self.pipeline.stages[self.index]]
            if checkpoint_dir is not None:
                shutil.copy2(Path(checkpoint_dir) / name, self.carry / name)
            share(self.carry, name)
            return
        out = dict(metrics, epoch=int(metrics["epoch"]) + self.offset,
                   stage=self.pipeline.number(self.index))
        if not self.last:  # the run's data params are those of the last stage
            for key in REPORT_PARAMS:
                out.pop(key, None)
        if final:
            out["selected_epoch"] = int(metrics["selected_epoch"]) + self.offset
        if checkpoint_dir is not None:
            shift_progress(Path(checkpoint_dir), self.offset)  # global epochs outside
            shutil.copytree(self.carry, Path(checkpoint_dir) / self.pipeline.carry_dir,
                            dirs_exist_ok=True)
            (Path(checkpoint_dir) / self.pipeline.stage_file).write_text(json.dumps(
                {"stage": self.pipeline.stages[self.index], "offset": self.offset}))
        self.outer.report(out, checkpoint_dir)


def shift_progress(directory: Path, offset: int) -> None:
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


def share(carry: Path, name: str) -> None:
    """Several workers: rank 0 holds the stage's artifact; send it to every rank."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    blob = [(carry / name).read_bytes() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(blob, src=0)
    if dist.get_rank() != 0:
        (carry / name).write_bytes(blob[0])


def run_stages(pipeline: Pipeline, stage_config: Callable[[str, Path], dict]) -> None:
    """Run the stages under the bound session, resuming inside the checkpoint's stage.

    Args:
        pipeline: the stages.
        stage_config: ``stage_config(stage, carry) -> config`` of the stage's method (a plain
            experiment dict); ``carry`` holds the finished stages' artifacts by their names.
    """
    outer = get_session()
    work = Path(tempfile.mkdtemp(prefix="medxfer-stages-"))
    carry = work / pipeline.carry_dir
    carry.mkdir()
    try:
        resume = outer.get_checkpoint()
        meta = {"stage": pipeline.stages[0], "offset": 0}
        if resume is not None:
            meta = json.loads((Path(resume) / pipeline.stage_file).read_text())
            shutil.copytree(Path(resume) / pipeline.carry_dir, carry, dirs_exist_ok=True)
        start, offset = pipeline.stages.index(meta["stage"]), int(meta["offset"])
        for i in range(start, len(pipeline.stages)):
            stage = pipeline.stages[i]
            session = StageSession(pipeline, outer, i, offset, carry,
                                   resume if i == start else None)
            with use_session(session):
                get_method(stage).train_loop_per_worker(stage_config(stage, carry))
            offset = session.next_offset
    finally:
        shutil.rmtree(work, ignore_errors=True)

"""``medxfer demo``: the whole platform on one laptop, offline, on data it generates.

1. synthesise MedMNIST-layout modalities (``medxfer data synth``);
2. pretrain a small backbone (``tiny_cnn``, 128-d embedding) on each source modality with the
   ``finetune`` method (supervised pretraining), recorded in ``sweep/<demo>-pretrain``;
3. a HyperOpt fine-tuning sweep of every source on every target (``sweep/<demo>-<target>-<source>``,
   trials tagged ``medxfer.benchmark=dataset``): the ground truth, logged in MLflow;
4. a small study (``medxfer study``, experiment ``study/<demo>-study``): full fine-tuning and
   linear probing of ``synthpneumonia`` under 2-fold cross-validation, tested zero-shot on a
   shifted hospital (seed ``000_3dd3de5c534b555f.txt`` Table 2's ID and OOD 0% columns), its
   data declared in the study and written on first use;
5. score every source on every target with every transferability metric
   (``transferability/<demo>``);
6. evaluate the scores against the logged ground truth (weighted tau per target, ranks,
   Friedman, critical difference) and print the tau table;
7. write the HTML report (with the study's table).

Everything goes into one MLflow store (the embedded default unless ``--tracking-uri``) and one
output folder. Each run of the demo has its own name (``demo-<time>``), so re-running never
collides with or duplicates an earlier demo.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

DEFAULT_SOURCES = ("synthderm", "synthchest", "synthpath", "synthoct")
DEFAULT_TARGETS = ("synthorgan", "synthpneumonia", "synthblood")


@dataclass
class DemoPlan:
    out: Path
    name: str
    sources: tuple[str, ...] = DEFAULT_SOURCES
    targets: tuple[str, ...] = DEFAULT_TARGETS
    n_per_class: int = 150         # images per class and split written by the generator
    train_per_class: int = 50      # fine-tuning subsample (thesis: 100/25)
    val_per_class: int = 20
    pretrain_epochs: int = 8
    epochs: int = 4                # fine-tuning epochs per trial
    trials: int = 3                # HyperOpt trials per (source, target)
    max_concurrent: int = 2
    seed: int = 0
    metrics: str = "all"

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def weights(self) -> Path:
        return self.out / "weights"


@dataclass
class DemoResult:
    tracking_uri: str
    name: str
    ground_truth: object
    taus: object
    evaluation: object
    report: Path
    seconds: dict[str, float] = field(default_factory=dict)
    study: object = None           # the study's table (StudySummary.table)


def study_config(plan: DemoPlan, uri: str) -> dict:
    """The demo's study: 2 rows x 2 folds (4 cells), each also scored on hospital h1."""
    root = str(plan.data / "study")
    return {
        "name": f"{plan.name}-study",
        "synthesize": {"out": root, "modalities": ["synthpneumonia"], "n_per_class": 30,
                       "hospitals": 1, "seed": plan.seed},
        "method": "finetune",
        "data": {"root": root, "flag": "synthpneumonia", "size": 28, "source": "scratch"},
        "model": {"backbone": "tiny_cnn", "arch": "tiny_cnn"},
        "train": {"epochs": 2, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9,
                  "batch_size": 16},
        "tracking": {"uri": uri},
        "methods": [{"name": "full-ft", "method": "finetune"},
                    {"name": "linear", "method": "finetune",
                     "method_config": {"freeze_backbone": True}}],
        "protocol": {"cv": {"folds": 2},
                     "test_sets": {"h1": {"root": root, "flag": "synthpneumonia_h1"}},
                     "seeds": [plan.seed], "max_concurrent": plan.max_concurrent,
                     "storage_path": str(plan.out / "ray_results")},
    }


def run_small_study(plan: DemoPlan, uri: str, echo: Callable[[str], None]):
    """Run :func:`study_config` on the running Ray runtime; returns its table."""
    from medxfer.cli.study import run_and_report
    from medxfer.tune.study_config import study_from_dict

    study = study_from_dict(study_config(plan, uri), source="demo study")
    _, summary = run_and_report(study, tracking_uri=uri, verbose=0, echo=echo)
    return summary.table


def _base_config(plan: DemoPlan, uri: str, flag: str) -> dict:
    return {
        "method": "finetune",
        "data": {"root": str(plan.data), "flag": flag, "size": 28, "as_rgb": True,
                 "n_train_per_class": plan.train_per_class,
                 "n_val_per_class": plan.val_per_class, "seed": plan.seed},
        "model": {"backbone": "tiny_cnn", "in_chans": 3, "arch": "tiny_cnn"},
        "train": {"epochs": plan.epochs, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9,
                  "weight_decay": 1e-4, "batch_size": 32, "seed": plan.seed},
        "tracking": {"uri": uri},
    }


def pretrain(plan: DemoPlan, uri: str, echo: Callable[[str], None]) -> dict[str, Path]:
    """Supervised pretraining of one tiny backbone per source; returns source -> weight file."""
    import tempfile

    from mlflow import MlflowClient

    from medxfer.methods.experiment import parse_experiment
    from medxfer.tracking import schema
    from medxfer.tracking.runs import log_report, trial_params, trial_tags
    from medxfer.tracking.store import ensure_experiment
    from medxfer.train.launcher import run_local

    sweep = f"{plan.name}-pretrain"
    exp_id = ensure_experiment(uri, schema.experiment_name("sweep", sweep))
    client = MlflowClient(tracking_uri=uri)
    plan.weights.mkdir(parents=True, exist_ok=True)
    out = {}
    for src in plan.sources:
        raw = _base_config(plan, uri, src)
        raw["data"].update(source="scratch", n_train_per_class=plan.n_per_class,
                           n_val_per_class=plan.val_per_class)
        raw["train"].update(epochs=plan.pretrain_epochs)
        cfg = parse_experiment(raw, source=f"demo pretrain {src}")
        run = client.create_run(exp_id, run_name=f"pretrain-{src}",
                                tags=trial_tags(cfg, sweep=sweep))
        for k, v in trial_params(cfg).items():
            client.log_param(run.info.run_id, k, v)
        with tempfile.TemporaryDirectory(prefix="medxfer-demo-") as tmp:
            session = run_local(cfg, storage_dir=tmp, keep=1, on_report=lambda m, _c, r=run:
                                log_report(client, r.info.run_id, m))
            final = Path(session.latest_checkpoint) / "model.pt"
            dest = plan.weights / f"{src}.pt"
            shutil.copyfile(final, dest)
        last = session.history[-1]
        client.set_terminated(run.info.run_id, "FINISHED")
        echo(f"  pretrained {src:<15} val_auc {last.get('val_auc', float('nan')):.3f} "
             f"-> {dest}")
        out[src] = dest
    return out


def finetune_sweeps(plan: DemoPlan, uri: str, weights: dict[str, Path],
                    echo: Callable[[str], None]) -> list[str]:
    """A HyperOpt sweep per (source, target); returns the sweep names."""
    from medxfer.tune.experiment import experiment_from_dict
    from medxfer.tune.sweep import run_sweep

    names = []
    for tgt in plan.targets:
        for src in plan.sources:
            raw = _base_config(plan, uri, tgt)
            raw["data"]["source"] = src
            raw["model"]["weights"] = str(weights[src])
            raw["tracking"]["benchmark"] = "dataset"
            raw["search"] = {
                "algorithm": "hyperopt", "metric": "val_loss", "mode": "min",
                "num_samples": plan.trials, "max_concurrent": plan.max_concurrent,
                "seed": plan.seed,
                "space": {"train.lr": {"loguniform": [1e-3, 0.3]},
                          "train.momentum": {"choice": [0.0, 0.9]}},
            }
            name = f"{plan.name}-{tgt}-{src}"
            t0 = time.perf_counter()
            res = run_sweep(experiment_from_dict(raw, source=f"demo sweep {name}"), name=name,
                            tracking_uri=uri, verbose=0,
                            storage_path=str(plan.out / "ray_results"))
            best = getattr(res, "best", None) or {}
            echo(f"  sweep {name}: {plan.trials} trials, {time.perf_counter() - t0:.0f} s"
                 + (f", best test_auc {best.get('test_auc'):.3f}"
                    if isinstance(best, dict) and best.get("test_auc") is not None else ""))
            names.append(name)
    return names


def write_zoo(plan: DemoPlan, weights: dict[str, Path]) -> Path:
    import yaml

    from medxfer.data.medmnist import dataset_info

    entries = [{"name": src, "architecture": "tiny_cnn", "arch": "tiny_cnn",
                "weights": str(w), "num_classes": dataset_info(src, plan.data).n_classes,
                "normalization": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
                "in_chans": 3, "input_size": 28}
               for src, w in weights.items()]
    path = plan.out / "zoo.yaml"
    path.write_text(yaml.safe_dump(entries, sort_keys=False))
    return path


def run_demo(plan: DemoPlan, tracking_uri: str,
             echo: Callable[[str], None] = print) -> DemoResult:
    import os

    # Tune's console reporter: the demo prints its own one line per sweep.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    import ray

    from medxfer.cluster_config import init_local_ray
    from medxfer.data.synth import synthesize
    from medxfer.reports.dashboard import write_report
    from medxfer.tracking.query import ground_truth
    from medxfer.transferability.evaluation import evaluate
    from medxfer.transferability.scores_io import read_scores_mlflow
    from medxfer.transferability.scoring import score_zoo

    seconds: dict[str, float] = {}
    t = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal t
        now = time.perf_counter()
        seconds[step] = now - t
        t = now

    echo(f"[1/7] synthetic data -> {plan.data}")
    synthesize(plan.data, size=28, n_per_class=plan.n_per_class, seed=plan.seed,
               modalities=list(dict.fromkeys(plan.sources + plan.targets)))
    lap("synthesize")

    echo(f"[2/7] pretraining {len(plan.sources)} sources (tiny_cnn, 128-d embedding)")
    weights = pretrain(plan, tracking_uri, echo)
    lap("pretrain")

    echo(f"[3/7] HyperOpt fine-tuning sweeps: {len(plan.sources)} sources x "
         f"{len(plan.targets)} targets x {plan.trials} trials (Ray Tune, local runtime)")
    started = not ray.is_initialized()
    if started:
        init_local_ray(num_cpus=2, resources={"trial_slot": plan.max_concurrent},
                       log_to_driver=False)
    try:
        finetune_sweeps(plan, tracking_uri, weights, echo)
        gt = ground_truth(tracking_uri, f"sweep/{plan.name}-*-*")
        gt = gt.loc[[s for s in plan.sources if s in gt.index],
                    [c for c in plan.targets if c in gt.columns]]
        lap("sweeps")
        echo(f"[4/7] a small study (2 rows x 2 folds, zero-shot on a shifted hospital) -> "
             f"study/{plan.name}-study")
        table = run_small_study(plan, tracking_uri, echo)
        lap("study")
    finally:
        if started:
            ray.shutdown()

    echo(f"[5/7] transferability scores ({plan.metrics}) -> transferability/{plan.name}")
    zoo = write_zoo(plan, weights)
    for tgt in plan.targets:
        score_zoo(zoo, plan.data, tgt, metrics=plan.metrics, size=28,
                  n_per_class=plan.train_per_class, tracking_uri=tracking_uri, name=plan.name,
                  progress=False, random_state=plan.seed)
    lap("score")

    echo("[6/7] evaluation against the logged ground truth")
    scores = read_scores_mlflow(tracking_uri, plan.name)
    ev = evaluate(scores, gt)
    lap("evaluate")

    echo(f"[7/7] report -> {plan.out / 'report'}")
    report = write_report(plan.out / "report", tracking_uri=tracking_uri,
                          name=f"sweep/{plan.name}-*-*", estimates=plan.name,
                          studies=[f"{plan.name}-study"])
    lap("report")
    return DemoResult(tracking_uri, plan.name, gt, ev.taus, ev,
                      Path(getattr(report, "index", plan.out / "report" / "index.html")),
                      seconds, table)

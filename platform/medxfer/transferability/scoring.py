"""Score a zoo of source models on a target and record the scores in MLflow.

``score_zoo(zoo, target_root, target_flag, ...)``: for every source model, load it from its
local weight file, extract the features and source logits of the target's training fold once
(spec "How the reference gets its inputs": batch size 32, eval mode, no shuffling, grey -> RGB
for 3-channel models, ToTensor + Normalize only), compute every requested metric on them, FU
on the model with :func:`fu_loader`, and record one MLflow run per (source, arch, target,
metric) in ``transferability/<name>``. Its two steps are public for callers that score the
sources elsewhere (a zoo sweep scores each source in a Ray task) and record them in one
process: :func:`score_source` (compute) and :func:`record_source` (the writer).

What a run holds (the reader is :func:`medxfer.transferability.scores_io.read_scores_mlflow`):

* tags ``medxfer.kind=estimate``, ``medxfer.source``, ``medxfer.target``, ``medxfer.arch``,
  ``medxfer.metric`` (schema), plus ``medxfer.backbone``, ``medxfer.weights``,
  ``medxfer.n_samples``, ``medxfer.image_size``;
* metric ``score`` for every metric except ``ncti``, whose runs carry its three raw terms as
  metrics ``seli``, ``ncc`` and ``vc`` and no ``score``: the thesis' NCTI is a min-max
  combination across sources (spec "NCTI"), so no single-source value exists; the reader
  combines the terms with ``combine("ncti", ...)``. ``lp`` and ``fu`` are runs of their own;
  ``lp_fu`` is never logged (it is computed at evaluation, so ``--invert lp_fu`` can apply
  eq. 6.8);
* a metric that cannot run for a source (LEEP needs the source head's logits: a zoo entry
  without ``num_classes``) gets a run with tag ``medxfer.skip_reason`` and no value; the reader
  leaves such runs out.

Idempotence: a run is found by its tags (kind, source, arch, target, metric). Re-scoring logs
the new value into the same run at the next step (MLflow's latest value is what readers see,
and the history of earlier values stays visible), updates its tags and clears or sets the
skip reason; no second run is created.

Global state: torch's and NumPy's global RNGs and the cuDNN flags are left as they were
(model construction and DataLoader iterators draw from torch's RNG, so the whole computation
runs inside ``torch.random.fork_rng``; FU sets its own seed inside, spec pitfall 11).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import pandas as pd

from medxfer.errors import MedxferInputError

from .registry import list_metrics, metric_info
from .zoo import SourceModel, Zoo, check_heads, check_target, load_zoo

NCTI_TERMS = ("seli", "ncc", "vc")


@dataclass
class ZooScores:
    """What :func:`score_zoo` computed.

    Attributes:
        table: One row per source (index ``(source, arch)``), one column per value key:
            registry names, with ``ncti`` as ``ncti.seli``, ``ncti.ncc``, ``ncti.vc``; NaN
            where a metric was skipped.
        skipped: ``{(source, arch, metric): reason}``.
        run_ids: ``{(source, arch, metric): MLflow run id}`` (empty when not logged).
        experiment: The MLflow experiment name (``transferability/<name>``).
    """

    table: pd.DataFrame
    skipped: dict = field(default_factory=dict)
    run_ids: dict = field(default_factory=dict)
    experiment: str = ""


def resolve_metrics(metrics: str | Sequence[str] = "all") -> list[str]:
    """``"all"`` or names (a list, or one comma-separated string) -> registry names.

    Raises:
        MedxferInputError: an unknown name (the message lists the valid ones).
    """
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    metrics = list(metrics)
    valid = list_metrics()
    if not metrics or metrics == ["all"]:
        from medxfer.transferability.evaluation import METRIC_ORDER

        return ([m for m in METRIC_ORDER if m in valid]
                + [m for m in valid if m not in METRIC_ORDER])
    bad = [m for m in metrics if m not in valid]
    if bad:
        hint = " (lp_fu is computed at evaluation from lp and fu)" if "lp_fu" in bad else ""
        raise MedxferInputError(f"unknown metric(s) {', '.join(bad)}{hint}; valid: all, "
                                f"{', '.join(valid)}", field="metrics")
    return list(dict.fromkeys(metrics))


class Prepare:
    """ToTensor output (C, H, W) in [0, 1] -> the model's channels, side and normalisation.

    Grey -> RGB is done by the dataset (``as_rgb``); RGB into a 1-channel model is the channel
    mean. A side other than ``size`` is resized bilinearly (antialiased).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], in_chans: int,
                 size: int | None = None):
        import torch

        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.in_chans, self.size = in_chans, size

    def __call__(self, x):
        import torch.nn.functional as F

        if self.in_chans == 1 and x.shape[0] != 1:
            x = x.mean(dim=0, keepdim=True)
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x[None], size=(self.size, self.size), mode="bilinear",
                              align_corners=False, antialias=True)[0]
        return (x - self.mean) / self.std


class _Headless:
    """Marker: a model without a source head is wrapped so ``.head`` is an Identity."""


def load_source_model(zoo: Zoo, source: SourceModel):
    """Build ``source`` with its weights; without ``num_classes`` wrap it so that the layer
    named ``head`` is an Identity whose input is the embedding (features, no logits)."""
    import torch
    from torch import nn

    from medxfer.models import create_backbone

    weights = zoo.weight_path(source)
    model = create_backbone(source.architecture, in_chans=source.in_chans, weights=weights,
                            num_classes=source.num_classes or 0)
    if source.num_classes:
        return model

    class HeadlessSource(nn.Module, _Headless):
        def __init__(self, backbone):
            super().__init__()
            self.backbone = backbone
            self.head = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.backbone(x))

    return HeadlessSource(model)


def target_train_fold(target_root, target_flag: str, source: SourceModel, *, size: int | None,
                      n_per_class: int | None):
    """The target's training fold prepared for ``source`` (spec: fold 1, 100 per class).

    The ``.npz`` is read at ``size`` if given, else at the source's ``input_size``, else 28;
    images are resized to ``input_size`` when it differs from the file's side.
    """
    from medxfer.data import dataset_info, load_target

    info = dataset_info(target_flag, target_root)
    if info.multilabel:
        raise MedxferInputError(f"target {target_flag!r} is multi-label ({info.task}); the "
                                f"transferability metrics need one class per image",
                                field="flag")
    file_size = size or source.input_size or 28
    mean, std = source.mean_std()
    prep = Prepare(mean, std, source.in_chans, source.input_size)
    ds = load_target(target_root, target_flag, file_size, n_train_per_class=n_per_class or None,
                     n_val_per_class=None, as_rgb=source.in_chans == 3 and info.n_channels == 1,
                     transform=prep)["train"]
    return ds, source.input_size or file_size


def score_zoo(zoo: Zoo | str | os.PathLike, target_root: str | os.PathLike, target_flag: str, *,
              metrics: str | Sequence[str] = "all", size: int | None = None,
              n_per_class: int | None = 100, batch_size: int = 32,
              tracking_uri: str | None = None, name: str = "default",
              random_state: int | None = 0, progress: bool = True, device: str | None = None,
              log: bool = True, echo: Callable[[str], None] | None = None) -> ZooScores:
    """Score every source of ``zoo`` on the target's training fold; log to MLflow.

    Args:
        zoo: A :class:`Zoo` or the path of a zoo YAML.
        target_root: Folder of MedMNIST-layout ``.npz`` files (and ``<flag>.json`` sidecars).
        target_flag: Target dataset flag (``medxfer.target``).
        metrics: ``"all"`` (every registry metric) or names.
        size: Side of the ``.npz`` to read (28/64/128/224); default per source: its
            ``input_size``, else 28.
        n_per_class: Training images per class (thesis: 100); None or 0: the whole split.
        batch_size: Feature-extraction batch size (thesis: 32). FU uses :func:`fu_loader`.
        tracking_uri: MLflow store (resolved as every verb does).
        name: Experiment ``transferability/<name>``.
        random_state: Seed of the stochastic metrics (NLEEP's GMM); the others keep the
            thesis' fixed seeds. None: a fresh seed (the thesis' unseeded behaviour).
        progress: Progress bars for extraction and FU.
        device: Torch device; default CUDA when available, else CPU.
        log: Record the runs (False: compute only).
        echo: Called with one-line notes (skips, sources as they start).

    Raises:
        MedxferInputError: bad zoo, target, metric names or tracking store, or a source head
            whose classes differ from ``num_classes`` under a metric that reads it (all found
            before anything is written); a metric failing on bad input (NaN features, too few
            samples for its PCA, ...), naming the source and metric.
    """
    import torch

    from medxfer.tracking import schema
    from medxfer.tracking.store import ensure_experiment
    from medxfer.tracking.uri import check_store

    if not isinstance(zoo, Zoo):
        zoo = load_zoo(zoo)
    names = resolve_metrics(metrics)
    # Every input is checked before the store is touched: a bad one writes nothing.
    uri = check_store(tracking_uri) if log else None
    check_target(zoo, target_root, target_flag, size)
    check_heads(zoo, names, [m for m in names if "logits" in metric_info(m).needs])
    echo = echo or (lambda _msg: None)
    exp_name = schema.experiment_name("transferability", name)
    client = exp_id = None
    if log:  # the store (and experiment) is created once, by this driver
        from mlflow import MlflowClient

        exp_id = ensure_experiment(uri, exp_name)
        client = MlflowClient(uri)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rows, index, skipped, run_ids = [], [], {}, {}
    cuda = [torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        for source in zoo.sources:
            scored = score_source(zoo, source, target_root, target_flag, names, size=size,
                                  n_per_class=n_per_class, batch_size=batch_size,
                                  random_state=random_state, progress=progress, device=dev,
                                  echo=echo)
            skipped.update(scored.skipped)
            if log:
                run_ids.update(record_source(client, exp_id, zoo, scored))
            rows.append(scored.row())
            index.append((source.name, source.arch_flag))
    table = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["source", "arch"]))
    return ZooScores(table, skipped, run_ids, exp_name)


@dataclass
class SourceScores:
    """What :func:`score_source` computed for one source model.

    Attributes:
        source: The zoo entry.
        target: The target flag.
        values: metric -> ``{"score": v}`` (``ncti``: its three raw terms), None if skipped.
        skipped: ``{(source, arch, metric): reason}``.
        n_samples: Target images scored.
        side: Image side fed to the model.
    """

    source: SourceModel
    target: str
    values: dict
    skipped: dict
    n_samples: int
    side: int

    def row(self) -> dict[str, float]:
        """One row of :attr:`ZooScores.table` (NaN where a metric was skipped)."""
        row = {}
        for m, vals in self.values.items():
            keys = [f"ncti.{t}" for t in NCTI_TERMS] if m == "ncti" else [m]
            src = [vals[t] if vals else math.nan for t in NCTI_TERMS] if m == "ncti" \
                else [vals["score"] if vals else math.nan]
            row.update(zip(keys, src))
        return row


def score_source(zoo: Zoo, source: SourceModel, target_root, target_flag: str,
                 names: Sequence[str], *, size: int | None = None,
                 n_per_class: int | None = 100, batch_size: int = 32,
                 random_state: int | None = 0, progress: bool = False, device=None,
                 echo: Callable[[str], None] | None = None) -> SourceScores:
    """Every metric of ``names`` for one source of ``zoo`` on the target (one feature pass).

    The arguments are those of :func:`score_zoo` (``names``: registry names). Draws from torch's
    global RNG: :func:`score_zoo` runs it inside ``torch.random.fork_rng``.
    """
    import torch

    from .extraction import extract, fu_layers
    from .fu import fu_loader

    echo = echo or (lambda _msg: None)
    dev = torch.device(device or "cpu")
    label = f"{source.name} ({source.arch_flag})"
    echo(f"scoring {label} on {target_flag}")
    dataset, side = target_train_fold(target_root, target_flag, source, size=size,
                                      n_per_class=n_per_class)
    model = load_source_model(zoo, source).to(dev)
    headless = isinstance(model, _Headless)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    ex = extract(model, loader, layer="head", device=dev, progress=progress)
    logits = None if headless else ex.logits
    values: dict[str, dict[str, float] | None] = {}
    skipped = {}
    for m in names:
        info = metric_info(m)
        if "logits" in info.needs and logits is None:
            reason = (f"{m} needs the source head's logits; zoo entry {source.name!r} "
                      f"has no num_classes")
            skipped[(source.name, source.arch_flag, m)] = reason
            values[m] = None
            echo(f"  skip {m}: {reason}")
            continue
        try:
            if "model" in info.needs:
                backbone = model.backbone if hasattr(model, "backbone") else model
                raw = info.fn(model, fu_loader(dataset), layers=fu_layers(backbone),
                              layer="head", progress=progress)
            else:
                rs = random_state if not info.deterministic else None
                raw = info.fn(ex.features, ex.labels, source_logits=logits,
                              random_state=rs)
        except MedxferInputError:
            raise
        except ValueError as exc:
            raise MedxferInputError(f"source {label}, metric {m}: {exc}",
                                    path=zoo.path, field="metrics") from exc
        vals = dict(zip(NCTI_TERMS, raw)) if m == "ncti" else {"score": raw}
        vals = {k: float(v) for k, v in vals.items()}
        bad = [k for k, v in vals.items() if not math.isfinite(v)]
        if bad:
            raise MedxferInputError(f"source {label}, metric {m}: {', '.join(bad)} is not "
                                    f"finite ({vals}); check the features of this source",
                                    path=zoo.path, field="metrics")
        values[m] = vals
    return SourceScores(source, target_flag, values, skipped, len(dataset), side)


def record_source(client, exp_id: str, zoo: Zoo, scored: SourceScores) -> dict:
    """Log one source's scores: one run per metric (module docstring); returns
    ``{(source, arch, metric): run id}``."""
    from medxfer.tracking import schema

    source = scored.source
    tags = {schema.KIND: schema.KIND_ESTIMATE, schema.SOURCE: source.name,
            schema.ARCH: source.arch_flag, schema.TARGET: scored.target}
    info_tags = {schema.BACKBONE: source.architecture,
                 schema.WEIGHTS: str(zoo.weight_path(source)),
                 schema.N_SAMPLES: str(scored.n_samples), schema.IMAGE_SIZE: str(scored.side)}
    run_ids = {}
    for m, vals in scored.values.items():
        key = (source.name, source.arch_flag, m)
        run_ids[key] = _record(client, exp_id, {**tags, schema.METRIC: m}, info_tags, vals,
                               scored.skipped.get(key))
    return run_ids


def _record(client, exp_id: str, key_tags: dict, info_tags: dict, values: dict | None,
            skip_reason: str | None) -> str:
    """Create or update the one run of (kind, source, arch, target, metric); return its id."""
    import time

    from mlflow.entities import Metric, RunTag

    from medxfer.tracking import schema

    flt = " and ".join(f"tags.`{k}` = '{v}'" for k, v in key_tags.items())
    found = client.search_runs([exp_id], filter_string=flt, max_results=1,
                               order_by=["attributes.start_time DESC"])
    name = (f"{key_tags[schema.METRIC]} {key_tags[schema.SOURCE]}/{key_tags[schema.ARCH]} -> "
            f"{key_tags[schema.TARGET]}")
    if found:
        run_id, step = found[0].info.run_id, 0
        for k in found[0].data.metrics:
            hist = client.get_metric_history(run_id, k)
            step = max([step] + [h.step + 1 for h in hist])
        if skip_reason is None and schema.SKIP_REASON in found[0].data.tags:
            client.delete_tag(run_id, schema.SKIP_REASON)
    else:
        run = client.create_run(exp_id, tags={**key_tags, schema.RUN_NAME: name},
                                run_name=name)
        run_id, step = run.info.run_id, 0
    now = int(time.time() * 1000)
    tags = {**info_tags}
    if skip_reason is not None:
        tags[schema.SKIP_REASON] = skip_reason
    client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in (values or {}).items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])
    client.set_terminated(run_id, "FINISHED")
    return run_id


def labelled_table(scores: ZooScores) -> pd.DataFrame:
    """The sources x metrics table with one index level ``source`` (``name (arch)`` where a
    source name repeats); NaN = skipped. ``estimate score`` renders it."""
    t = scores.table.copy()
    t.index = pd.Index([f"{s} ({a})" if sum(i[0] == s for i in scores.table.index) > 1 else s
                        for s, a in scores.table.index], name="source")
    return t

"""A study YAML: an experiment with a ``protocol:``, rows of methods, and its cells.

::

    name: toy-study                  # default study name (else the file's stem)
    method: finetune                 # the experiment every row starts from (as for sweeps)
    data: {root: data/synth, flag: synthpneumonia}
    train: {epochs: 3}
    methods:                         # table rows: a name plus overrides of the experiment
      - finetune                     #   (a bare name: that method as configured above)
      - {name: linear, method: finetune, method_config: {freeze_backbone: true}}
    protocol:                        # medxfer.config.ProtocolConfig
      cv: {folds: 3}
      test_sets: {h1: {root: data/synth, flag: synthpneumonia_h1}}
      few_shot: {fractions: [0.1, 0.25]}
      seeds: [0]
    search: {...}                    # optional: each training cell's hyperparameters from a
                                     # sweep on that cell's validation split (tune/search_config)
    synthesize: {out: data/synth, hospitals: 1}   # optional: synthetic data the study writes
                                     # before it starts when the folder is absent
                                     # (medxfer.data.synth_studies.SynthSpec)

A *cell* is one trained model (:class:`medxfer.config.CellConfig`): training cells are rows x
folds x label fractions (or counts) x shortcut shares (``protocol.shortcut.p_art``) x seeds;
transfer cells add, per training cell without a label fraction, each few-shot test set x
fraction. Each runs as one Ray Tune trial with the row's experiment plus its coordinates
(``cell:``); the trial recomputes its rows from them (:mod:`medxfer.data.protocol`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medxfer.config import (CellConfig, ProtocolConfig, absolute_path, deep_merge,
                            format_errors, read_yaml)
from medxfer.data.synth_studies import SynthSpec
from medxfer.errors import MedxferInputError
from medxfer.tune.search_config import SearchConfig, parse_search

STUDY_ONLY_KEYS = ("name", "methods", "synthesize")
_SAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


@dataclass(frozen=True)
class Row:
    """A table row: a name and its validated experiment config (``model_dump()``)."""

    name: str
    config: dict


@dataclass
class Study:
    """A validated study (see the module docstring)."""

    path: Path | None
    default_name: str
    rows: list[Row]
    protocol: ProtocolConfig
    search: SearchConfig | None
    raw: dict = field(default_factory=dict)
    synth: SynthSpec | None = None

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "study"

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)


def load_study(path: str | Path) -> Study:
    """Read and validate a study YAML (errors name the file and the YAML path)."""
    p = Path(path)
    return study_from_dict(read_yaml(p), source=str(p), path=p)


def _row_specs(raw: dict, source: str) -> list[tuple[str, dict]]:
    methods = raw.get("methods")
    if methods is None:
        if "method" not in raw:
            raise MedxferInputError("method: required field missing (or list methods:)",
                                    path=source)
        return [(str(raw["method"]), {})]
    if not isinstance(methods, list) or not methods:
        raise MedxferInputError("methods: expected a non-empty list of method names or "
                                "{name: ..., <overrides>} mappings", path=source)
    specs = []
    for i, entry in enumerate(methods):
        if isinstance(entry, str):
            entry = {"name": entry, "method": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise MedxferInputError(f"methods[{i}]: expected a method name or a mapping with "
                                    "'name'", path=source)
        over = {k: v for k, v in entry.items() if k != "name"}
        if "protocol" in over or "search" in over:
            raise MedxferInputError(f"methods[{i}]: protocol and search belong to the whole "
                                    "study", path=source)
        specs.append((entry["name"], over))
    names = [n for n, _ in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup or any(not _SAFE.sub("", n) == n for n in names):
        raise MedxferInputError(f"methods: row names must be unique and hold only letters, "
                                f"digits, '_', '-', '.', '='; got {names}", path=source)
    return specs


def study_from_dict(raw: Any, *, source: str = "study", path: Path | None = None,
                    base_dir: str | Path | None = None) -> Study:
    """Validate a study dict: every row's experiment (with the method's defaults) and the
    protocol and search sections; relative paths resolve against ``base_dir`` (default: the
    working directory).

    Raises:
        MedxferInputError: naming ``source`` and the YAML path (``methods[1]: ...``).
    """
    from medxfer.methods.experiment import parse_experiment

    if not isinstance(raw, dict):
        raise MedxferInputError("expected a mapping at the top level", path=source)
    if not raw.get("protocol"):
        raise MedxferInputError("protocol: required for a study (cv, test_sets, few_shot, "
                                "label_fractions, ...)", path=source)
    base = {k: v for k, v in raw.items() if k not in STUDY_ONLY_KEYS and k != "search"}
    rows = []
    for i, (name, over) in enumerate(_row_specs(raw, source)):
        where = source if "methods" not in raw else f"{source}: methods[{i}] ({name})"
        cfg = parse_experiment(deep_merge(base, over), source=where, base_dir=base_dir)
        rows.append(Row(name, cfg.model_dump()))
    search = parse_search(raw["search"], source=source) if raw.get("search") else None
    for key in (search.space if search else {}):
        node: Any = rows[0].config
        for part in key.split(".")[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or key.count(".") == 0:
            raise MedxferInputError(f"search.space.{key}: not a dotted path into the "
                                    "experiment (such as train.lr)", path=source)
    protocol = ProtocolConfig.model_validate(rows[0].config["protocol"])
    metric = study_metric(rows, protocol, source)
    protocol = protocol.model_copy(update={"metric": metric})
    for row in rows:  # every cell's experiment carries the table's metric
        row.config["protocol"]["metric"] = metric
    name = raw.get("name") or (path.stem if path else "study")
    synth = _synth(raw.get("synthesize"), source, base_dir)
    return Study(path, str(name), rows, protocol, search, raw, synth)


#: Methods whose cells report segmentation metrics (``test_mean_dice``, ``test_dice_<c>``).
SEGMENTATION_METHODS = ("segment",)


def study_metric(rows: list[Row], protocol: ProtocolConfig, source: str) -> str:
    """The table's metric: ``protocol.metric`` checked against what the rows report, or, when
    not given, ``mean_dice`` for rows that all run ``segment`` and ``auc`` for rows that all
    classify.

    Raises:
        MedxferInputError: naming ``protocol.metric`` (a metric a row does not report, or rows
            of both kinds without one) or ``protocol.few_shot``/``protocol.shortcut`` (which
            fine-tune or confound classifiers) for ``segment`` rows.
    """
    from medxfer.config import is_segmentation_metric

    seg = [r.name for r in rows if r.config["method"] in SEGMENTATION_METHODS]
    cls = [r.name for r in rows if r.config["method"] not in SEGMENTATION_METHODS]
    for key in ("few_shot", "shortcut"):
        if seg and getattr(protocol, key) is not None:
            raise MedxferInputError(f"protocol.{key}: rows {seg} run segment; {key} cells "
                                    "fine-tune or confound classifiers", path=source)
    metric = protocol.metric
    if metric is None:
        if seg and cls:
            raise MedxferInputError(f"protocol.metric: rows {seg} run segment (Dice) and rows "
                                    f"{cls} classify; name the table's metric, or split the "
                                    "study", path=source)
        return "mean_dice" if seg else "auc"
    wrong = cls if is_segmentation_metric(metric) else seg
    if wrong:
        kind = "classification" if is_segmentation_metric(metric) else "segmentation (Dice)"
        raise MedxferInputError(f"protocol.metric: {metric!r} is not reported by rows {wrong} "
                                f"({kind} metrics)", path=source)
    return metric


def ensure_declared_data(raw: Any, source: str = "study",
                         base_dir: str | Path | None = None) -> None:
    """Write the data a study's ``synthesize:`` section declares, when its folder is absent
    (:func:`medxfer.data.synth_studies.ensure_synthetic`); nothing without the section."""
    from medxfer.data.synth_studies import ensure_synthetic

    spec = _synth(raw.get("synthesize"), source, base_dir) if isinstance(raw, dict) else None
    if spec is not None:
        ensure_synthetic(spec, source=source)


def _synth(raw: Any, source: str, base_dir: str | Path | None) -> SynthSpec | None:
    """The ``synthesize:`` section, its ``out`` absolute against ``base_dir`` (or the working
    directory) like the data paths."""
    from pydantic import ValidationError

    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise MedxferInputError("synthesize: expected a mapping such as {out: data/synth, "
                                "hospitals: 2}", path=source)
    try:
        spec = SynthSpec.model_validate(raw)
    except ValidationError as exc:
        raise MedxferInputError("; ".join(format_errors(exc, "synthesize")),
                                path=source) from None
    return spec.model_copy(update={"out": absolute_path(spec.out, base_dir or Path.cwd())})


# --------------------------------------------------------------------------------- cells


def cell_key(cell: CellConfig | dict) -> str:
    """The cell's coordinates as one string (its MLflow run's key and name)."""
    c = cell if isinstance(cell, CellConfig) else CellConfig.model_validate(cell)
    parts = [c.row, c.phase]
    if c.fold is not None:
        parts.append(f"fold={c.fold}")
    if c.fraction is not None:
        parts.append(f"fraction={c.fraction:g}")
    if c.n_labelled is not None:
        parts.append(f"n={c.n_labelled}")
    if c.test_set is not None:
        parts.append(f"test={c.test_set}")
    if c.p_art is not None:
        parts.append(f"p_art={c.p_art:g}")
    parts.append(f"seed={c.seed}")
    return "/".join(parts)


def slug(key: str) -> str:
    """``key`` as a file name."""
    return _SAFE.sub("_", key.replace("/", "__"))


def training_cells(study: Study, n_folds: int | None, id_name: str,
                   sites: list[str] | None = None) -> list[CellConfig]:
    """Rows x folds x label fractions or counts x shortcut shares ``p_art`` x seeds
    (``n_folds`` None: the source's own splits). ``test_set``: ``id_name``, or under
    leave-one-site-out the held-out ``sites``."""
    p = study.protocol
    labels = ([{"fraction": f} for f in p.label_fractions] if p.label_fractions else
              [{"n_labelled": m} for m in p.n_labelled] if p.n_labelled else [{}])
    if p.shortcut is not None:
        labels = [{**lab, "p_art": share} for lab in labels for share in p.shortcut.p_art]
    folds = [None] if n_folds is None else list(range(n_folds))
    out = []
    for row in study.rows:
        for fold in folds:
            test = id_name if fold is None or not sites else sites[fold]
            for lab in labels:
                for seed in p.seeds:
                    out.append(CellConfig(row=row.name, phase="train", fold=fold,
                                          test_set=test, seed=seed, **lab))
    return out


def transfer_cells(study: Study, trained: list[CellConfig]) -> list[CellConfig]:
    """Per training cell: each few-shot test set x fraction (a shortcut cell's ``p_art`` names
    the model it starts from; its fine-tuning data are not confounded)."""
    p = study.protocol
    if p.few_shot is None:
        return []
    return [CellConfig(row=c.row, phase="transfer", fold=c.fold, seed=c.seed, test_set=name,
                       fraction=f, p_art=c.p_art)
            for c in trained for name in p.few_shot_sets() for f in p.few_shot.fractions]


def cell_config(study: Study, cell: CellConfig, *, chosen: dict[str, Any] | None = None,
                model_dir: Path | None = None) -> dict:
    """The experiment a cell's trial runs (validated ``model_dump()``).

    Training and search cells: the row's experiment with ``train.seed`` = the cell's seed and
    the cell's ``chosen`` hyperparameters (dotted keys). Transfer cells: ``finetune`` on the
    test set (its data inheriting the row's ``size``/``as_rgb``/transforms), starting from the
    training cell's saved model in ``model_dir`` (``model.pt``, else ``encoder.pt``; a ``dce.pt``
    beside it goes first in the transforms, as in the SCC pipeline it came from), with the
    row's ``train`` settings and ``few_shot.train``/``few_shot.method_config`` on top; a
    linear-probing ``finetune`` row stays linear.
    """
    from medxfer.config import set_path
    from medxfer.methods.experiment import parse_experiment

    row = study.row(cell.row)
    raw = copy.deepcopy(row.config)
    raw["cell"] = cell.model_dump()
    raw["train"]["seed"] = cell.seed
    for key, value in (chosen or {}).items():
        set_path(raw, key, value)
    if cell.phase == "transfer":
        raw = _transfer(study, raw, cell, model_dir)
    return parse_experiment(raw, source=f"{study.source}: cell {cell_key(cell)}").model_dump()


def _transfer(study: Study, raw: dict, cell: CellConfig, model_dir: Path | None) -> dict:
    from medxfer.config import DataConfig

    p = study.protocol
    if model_dir is None:
        raise ValueError("a transfer cell needs the model directory of its training cell")
    weights = next((model_dir / f for f in ("model.pt", "encoder.pt")
                    if (model_dir / f).is_file()), None)
    if weights is None:
        raise MedxferInputError(f"row {cell.row!r}: its training cell saved no model.pt or "
                                f"encoder.pt to fine-tune (method {raw['method']!r})",
                                path=str(model_dir))
    data = p.test_sets[cell.test_set].resolve(DataConfig.model_validate(raw["data"]))
    data = data.model_dump()
    if (model_dir / "dce.pt").is_file():
        dce = [{"name": "dce", "weights": str(model_dir / "dce.pt")}]
        data["transforms"] = dce + (data["transforms"] or [])
        data["eval_transforms"] = dce + (data["eval_transforms"] or [])
    options = {}
    if raw["method"] == "finetune":
        options["freeze_backbone"] = raw["method_config"].get("freeze_backbone", False)
    raw.update(method="finetune", method_config={**options, **p.few_shot.method_config},
               data=data, train=deep_merge(raw["train"], p.few_shot.train))
    raw["train"]["seed"] = cell.seed
    raw["model"]["weights"] = str(weights)
    return raw

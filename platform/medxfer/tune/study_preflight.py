"""Checks a study must pass before Ray starts: the protocol can be satisfied by the data.

:func:`preflight` reads every source's rows (labels, patients, sites; no image is decoded) and
computes every split the cells will use, so a study that cannot run fails here with exit 2 and
the YAML path, and nothing is written:

* the data: every row's ``data`` and every ``protocol.test_sets.<name>`` exist and parse
  (``.npz`` keys, manifest columns such as ``data.patient_column``, labels);
* ``protocol.cv.folds``: no more folds than images (patients, when grouped) of any class or
  label, and every fold leaves a validation part;
* ``protocol.leave_one_site_out``: sites, at least two, no patient at two sites;
* ``protocol.n_labelled``: no count above the smallest training part;
* ``protocol.test_sets``: the same task and label count as the source (a model trained on it
  is evaluated there zero-shot), and a train:test split both sides of which hold images;
* ``segment`` rows with ``.npz`` masks: every split of the source and of each test set has
  ``<split>_masks``;
* ``protocol.few_shot``: each fraction selects at least one image of the training part.
* ``protocol.shortcut``: a known confounder whose transform takes ``params``, single-label
  data with ``target_class`` (and the ``attribute``), and every share's sets can be drawn.

Fractions outside (0, 1] and unknown test-set names are rejected when the YAML is parsed
(:class:`medxfer.config.ProtocolConfig`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from medxfer.config import CellConfig, DataConfig
from medxfer.errors import MedxferInputError
from medxfer.tune.study_config import Study, training_cells, transfer_cells


@dataclass
class StudyPlan:
    """What :func:`preflight` found: the cells to run, the source's name and, under
    leave-one-site-out, the held-out site of each fold (``site:<name>``)."""

    train: list[CellConfig]
    transfer: list[CellConfig]
    id_name: str
    sites: list[str] | None = None

    def trained_by(self, cell: CellConfig) -> CellConfig:
        """The training cell whose model a transfer ``cell`` starts from."""
        held = self.sites[cell.fold] if self.sites and cell.fold is not None else self.id_name
        return cell.model_copy(update={"phase": "train", "test_set": held, "fraction": None})


#: The fields that say which data a row trains on (rows may differ in transforms only).
_SOURCE_FIELDS = ("root", "flag", "manifest", "image_root", "labels", "uncertain",
                  "patient_column", "site_column", "split_column", "size", "subsample",
                  "n_train_per_class", "n_val_per_class", "seed")
_COLUMNS = ("patient_column", "site_column", "split_column")


@contextlib.contextmanager
def _at(study: Study, yaml_path: str, data: DataConfig | None = None):
    """Re-raise an input error from inside as ``<study>: <yaml_path>: <message>``; a manifest
    column the YAML named (``data.patient_column``, ...) is named by its YAML path."""
    try:
        yield
    except MedxferInputError as exc:
        for key in _COLUMNS if data is not None else ():
            if exc.field is not None and exc.field == getattr(data, key):
                yaml_path = f"{yaml_path}.{key}"
        raise MedxferInputError(f"{yaml_path}: {exc}", path=study.source) from None


def _class_counts(source, grouped: bool) -> dict[str, int]:
    """Images (or patients, when grouped) per class, or positives per label."""
    y, names = source.labels, source.info.labels
    out = {}
    for j, name in enumerate(names):
        rows = np.flatnonzero(y[:, j] == 1) if source.multilabel else np.flatnonzero(y[:, 0] == j)
        if grouped and source.patients is not None:
            out[name] = len(np.unique(source.patients[rows]))
        else:
            out[name] = len(rows)
    return out


def _check_cv(study: Study, source) -> None:
    cv = study.protocol.cv
    grouped = cv.grouped is not False and source.patients is not None
    what = "patients" if grouped else ("positives" if source.multilabel else "images")
    thin = {n: c for n, c in _class_counts(source, grouped).items() if 0 < c < cv.folds}
    if thin:
        raise MedxferInputError(f"protocol.cv.folds: {cv.folds} folds, but in {source.name} "
                                f"the class(es) {thin} have fewer {what} than folds",
                                path=study.source)


def _check_test_set(study: Study, name: str, source, other) -> None:
    from medxfer.data.protocol import ood_parts

    p = study.protocol
    if (other.info.task, other.info.n_classes) != (source.info.task, source.info.n_classes):
        raise MedxferInputError(
            f"{other.name} has task {other.info.task!r} with {other.info.n_classes} labels, "
            f"the source {source.name} {source.info.task!r} with {source.info.n_classes}: a "
            "model trained on the source cannot be evaluated on it")
    pool, test = ood_parts(other, name, p.test_sets[name], p)
    if len(pool) == 0 or len(test) == 0:
        raise MedxferInputError(f"split {p.test_sets[name].split!r} leaves an empty part of "
                                f"{len(other)} images")


def _check_masks(study: Study, data: DataConfig) -> None:
    from medxfer.data.segmentation import check_npz_masks

    rows = [r for r in study.rows if r.config["method"] == "segment"
            and r.config["method_config"].get("masks", "npz") == "npz"]
    if not rows:
        return
    where = {"data": data, **{f"protocol.test_sets.{n}": t.resolve(data)
                              for n, t in study.protocol.test_sets.items()}}
    for yaml_path, d in where.items():
        if d.manifest is None:
            with _at(study, yaml_path):
                check_npz_masks(d.root, d.flag, d.size)


def preflight(study: Study) -> StudyPlan:
    """Check the study against its data and expand its cells (module docstring).

    Raises:
        MedxferInputError: ``<study file>: <yaml path>: <what is wrong>``.
    """
    from medxfer.data.protocol import folds, select_cell, select_transfer
    from medxfer.data.sources import load_source

    p = study.protocol
    data = DataConfig.model_validate(study.rows[0].config["data"])
    for i, row in enumerate(study.rows):
        if any(row.config["data"][k] != getattr(data, k) for k in _SOURCE_FIELDS):
            raise MedxferInputError(f"methods[{i}].data: every row trains on the same data "
                                    "(rows may differ in transforms)", path=study.source)
    with _at(study, "data", data):
        source = load_source(data)
    fold_names = None
    if p.cv is not None:
        _check_cv(study, source)
    if p.cv is not None or p.leave_one_site_out:
        where = "protocol.cv" if p.cv is not None else "protocol.leave_one_site_out"
        with _at(study, where):
            fold_names = [name for name, _, _ in folds(source, p)]
    if p.shortcut is not None:
        from medxfer.data.shortcut_sets import check_shortcut

        with _at(study, "protocol.shortcut"):
            check_shortcut(p.shortcut, source)
    others = {}
    for name, entry in p.test_sets.items():
        with _at(study, f"protocol.test_sets.{name}", entry.resolve(data)):
            others[name] = load_source(entry.resolve(data))
            _check_test_set(study, name, source, others[name])
    _check_masks(study, data)
    sites = fold_names if p.leave_one_site_out else None
    plan = StudyPlan(training_cells(study, len(fold_names) if fold_names else None,
                                    source.name, sites), [], source.name, sites)
    for cell in {(c.fold, c.fraction, c.n_labelled, c.p_art): c for c in plan.train}.values():
        where = ("protocol.n_labelled" if cell.n_labelled else
                 "protocol.shortcut" if cell.p_art is not None else "protocol")
        with _at(study, where):
            select_cell(source, data, p, cell, others)
    plan.transfer = transfer_cells(study, plan.train)
    for cell in {(c.test_set, c.fraction): c for c in plan.transfer}.values():
        with _at(study, f"protocol.few_shot ({cell.test_set})"):
            select_transfer(others[cell.test_set], p, cell)
    return plan

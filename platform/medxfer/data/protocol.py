"""A study cell's data, recomputed from the source's rows and the cell's coordinates.

Every trial derives its rows here (never from index lists shipped through Tune): the same data,
protocol and cell always give the same rows. The splits are those of
:mod:`medxfer.data.splits`; patient ids, where the source has them, keep every patient on one
side of every split (folds, validation parts, OOD parts).

* Training cells (``cell.phase`` ``train`` or ``search``):

  - ``protocol.cv``: :func:`~medxfer.data.splits.stratified_kfold` over *all* rows of the
    source (its own splits pooled); ``protocol.leave_one_site_out``:
    :func:`~medxfer.data.splits.leave_one_site_out`, fold ``k`` = the k-th site in sorted
    order; neither (or no protocol): the source's own train/val/test splits (a manifest
    without a split column: ``data.test_fraction`` to test, then ``data.val_fraction`` of the
    rest to val, by patient). A fold's training part loses ``protocol.val_fraction`` to
    validation (:func:`~medxfer.data.splits.ood_split`).
  - ``data.subsample`` / ``n_*_per_class`` then cut train and val per class
    (:func:`~medxfer.data.splits.subsample_per_class`; the own-split case equals
    :func:`medxfer.data.medmnist.load_target`).
  - ``cell.fraction`` / ``cell.n_labelled``: the *labelled* rows, a prefix of one seeded
    stratified order of the training rows (:func:`~medxfer.data.splits.nested_fractions`), so
    10 % lies inside 25 % and M = 10 inside M = 50.
  - ``search`` cells have no test rows: a hyperparameter search sees validation only.
  - ``protocol.shortcut`` (thesis, seed ``004_43f54b618356cecf.txt`` sec. 4.2.2): the cell's
    share ``p_art`` of one class carries a confounder in train, val and test; the test rows
    also form the o.o.d. part ``ood`` with the correlation reversed
    (:func:`medxfer.data.shortcut_sets.confound_selection`).

* Transfer cells (``cell.phase`` ``transfer``, seed ``000_3dd3de5c534b555f.txt`` sec. 4.1): the
  test set's rows split train:test (``"9:1"``); the training part loses
  ``few_shot.val_fraction`` to validation and ``cell.fraction`` of the rest (nested) trains.
  :func:`ood_test_rows` gives the same test part to the zero-shot evaluation of training cells.

Seeds: everything derives from ``protocol.seed`` (``data.seed`` for the source's own splits and
the per-class subsample), so the seeds of a study (``train.seed``) change the training, not the
data.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from medxfer.config import CellConfig, DataConfig, ProtocolConfig, TestSetConfig
from medxfer.data.sources import Source
from medxfer.errors import MedxferInputError

# Distinct streams of protocol.seed, one per kind of split.
_CV, _VAL, _LABELLED, _OOD, _FEW_VAL, _FEW = range(6)


@dataclass(frozen=True)
class Selection:
    """Rows (sorted int64 indices into the source) of one cell.

    Attributes:
        train: rows the method trains on (unlabelled use included).
        val: model-selection rows.
        labelled: rows whose labels may be used (``train`` unless a label fraction or count).
        test: the test rows, or None (search cells).
        test_sets: zero-shot OOD test rows per test-set name (rows of *that* source).
        ood: a shortcut cell's o.o.d. test rows (this source, correlation reversed), or None.
        applied: a shortcut cell's confounder marks per part (``train``, ``val``,
            ``labelled``, ``test``, ``ood``): ``(m,)`` bool aligned with the part's rows
            (:func:`medxfer.data.shortcut_sets.confound_selection`).
    """

    train: np.ndarray
    val: np.ndarray
    labelled: np.ndarray
    test: np.ndarray | None
    test_sets: dict[str, np.ndarray] = field(default_factory=dict)
    ood: np.ndarray | None = None
    applied: dict[str, np.ndarray] = field(default_factory=dict)

    def crc(self) -> int:
        """CRC-32 of every row list and confounder mark (a run param: the trial's rows,
        comparable across runs)."""
        parts = [self.train, self.val, self.labelled,
                 np.zeros(0, np.int64) if self.test is None else self.test]
        parts += [self.test_sets[k] for k in sorted(self.test_sets)]
        parts += [] if self.ood is None else [self.ood]
        parts += [self.applied[k] for k in sorted(self.applied)]
        crc = 0
        for p in parts:
            crc = zlib.crc32(np.ascontiguousarray(p, dtype=np.int64).tobytes() + b"|", crc)
        return crc


def _crc(name: str) -> int:
    return zlib.crc32(name.encode())


def _groups(source: Source, rows: np.ndarray | None = None) -> np.ndarray | None:
    if source.patients is None:
        return None
    return source.patients if rows is None else source.patients[rows]


def _split_rows(source: Source, rows: np.ndarray, share: float, seed) -> tuple:
    """``rows`` split (rest, held-out ``share``), stratified, by patient when known."""
    from medxfer.data.splits import ood_split

    rest, held = ood_split(source.labels[rows], share, seed=seed, groups=_groups(source, rows),
                           multilabel=source.multilabel)
    return np.sort(rows[rest]), np.sort(rows[held])


def own_splits(source: Source, data: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) rows of the source's own split (module docstring)."""
    if source.splits is not None:
        return source.rows("train"), source.rows("val"), source.rows("test")
    every = np.arange(len(source), dtype=np.int64)
    rest, test = _split_rows(source, every, data.test_fraction, (data.seed, 7))
    train, val = _split_rows(source, rest, data.val_fraction, (data.seed, 8))
    return train, val, test


def folds(source: Source, protocol: ProtocolConfig) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, rest, test)`` per fold of ``protocol.cv`` or ``leave_one_site_out``.

    Raises:
        MedxferInputError: no cv / site split in the protocol, or data that cannot have it.
    """
    from medxfer.data.splits import leave_one_site_out, stratified_kfold

    if protocol.cv is not None:
        grouped = protocol.cv.grouped
        groups = _groups(source) if grouped in (None, True) else None
        if grouped and groups is None:
            raise MedxferInputError(f"protocol.cv.grouped: {source.name} has no patient ids",
                                    path=source.where)
        pairs = stratified_kfold(source.labels, protocol.cv.folds, groups=groups,
                                 seed=(protocol.seed, _CV), multilabel=source.multilabel)
        return [(str(k), rest, test) for k, (rest, test) in enumerate(pairs)]
    if protocol.leave_one_site_out:
        if source.sites is None:
            raise MedxferInputError(f"protocol.leave_one_site_out: {source.name} has no sites "
                                    "(a .npz <split>_sites key or a manifest site column)",
                                    path=source.where)
        return [(f"site:{s}", rest, test) for s, rest, test in
                leave_one_site_out(source.sites, groups=_groups(source))]
    raise MedxferInputError("the protocol has neither cv nor leave_one_site_out",
                            field="protocol")


def _per_class(source: Source, rows: np.ndarray, n: int | None, seed) -> np.ndarray:
    if n is None:
        return rows
    from medxfer.data.splits import subsample_per_class

    keep = subsample_per_class(source.labels[rows], n, seed=seed, multilabel=source.multilabel)
    return rows[keep]


def nested_prefix(source: Source, rows: np.ndarray, *, fraction: float | None = None,
                  count: int | None = None, seed) -> np.ndarray:
    """The labelled prefix of ``rows``: ``fraction`` of them, or ``count`` images (nested).

    Raises:
        MedxferInputError: ``count`` exceeds the rows.
    """
    from medxfer.data.splits import nested_fractions

    if fraction is None and count is None:
        return rows
    if count is not None:
        if count > len(rows):
            raise MedxferInputError(f"n_labelled {count} exceeds the {len(rows)} training "
                                    f"images of {source.name}")
        fraction = count / len(rows)
    # count / n * n rounds back to count, so a count is a fraction of the same seeded order
    return nested_fractions(source.labels, [fraction], seed=seed, indices=rows,
                            multilabel=source.multilabel)[fraction]


def training_rows(source: Source, data: DataConfig, protocol: ProtocolConfig | None,
                  fold: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) of a training cell before label fractions (module docstring).

    Raises:
        MedxferInputError: a cv / site protocol without a fold (a plain run of a study YAML).
    """
    if protocol is None or (protocol.cv is None and not protocol.leave_one_site_out):
        train, val, test = own_splits(source, data)
    elif fold is None:
        raise MedxferInputError("this protocol has folds; `medxfer study` runs one cell per "
                                "fold (a single run needs cell.fold)", field="protocol")
    else:
        parts = folds(source, protocol)
        if fold is None or not 0 <= fold < len(parts):
            raise MedxferInputError(f"cell.fold {fold} is not one of the {len(parts)} folds",
                                    field="cell.fold")
        _, rest, test = parts[fold]
        train, val = _split_rows(source, rest, protocol.val_fraction,
                                 (protocol.seed, _VAL, fold))
    n_train, n_val = data.per_class
    return (_per_class(source, train, n_train, (data.seed, 0)),
            _per_class(source, val, n_val, (data.seed, 1)), test)


def ood_parts(source: Source, name: str, test_set: TestSetConfig,
              protocol: ProtocolConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training part, test part) of test set ``name`` (its ``split`` ratio, by patient)."""
    every = np.arange(len(source), dtype=np.int64)
    return _split_rows(source, every, test_set.test_share, (protocol.seed, _OOD, _crc(name)))


def select_cell(source: Source, data: DataConfig, protocol: ProtocolConfig | None,
                cell: CellConfig | None,
                test_sources: dict[str, Source] | None = None) -> Selection:
    """The rows of a ``train``/``search`` cell (or of a plain run: no protocol, no cell).

    Args:
        source: the source ``data`` describes.
        test_sources: the sources of ``protocol.test_sets`` (zero-shot test parts of training
            cells); leave out for none.
    """
    phase = cell.phase if cell is not None else "train"
    if phase == "transfer":
        raise ValueError("select_cell is for training cells; use select_transfer")
    fold = cell.fold if cell is not None else None
    train, val, test = training_rows(source, data, protocol, fold)
    labelled = train
    if cell is not None and (cell.fraction is not None or cell.n_labelled is not None):
        seed = (protocol.seed if protocol else 0, _LABELLED, 0 if fold is None else fold + 1)
        labelled = nested_prefix(source, train, fraction=cell.fraction, count=cell.n_labelled,
                                 seed=seed)
    if phase == "search":
        return _confounded(source, protocol, cell, Selection(train, val, labelled, None))
    ood = {}
    for name, src in (test_sources or {}).items():
        ood[name] = ood_parts(src, name, protocol.test_sets[name], protocol)[1]
    return _confounded(source, protocol, cell, Selection(train, val, labelled, test, ood))


def _confounded(source: Source, protocol: ProtocolConfig | None, cell: CellConfig | None,
                sel: Selection) -> Selection:
    """``sel`` with a shortcut study's confounder put in (cell's ``p_art``), else as it is.

    Raises:
        MedxferInputError: a shortcut protocol without a cell share (a plain run).
    """
    if protocol is None or protocol.shortcut is None:
        return sel
    if cell is None or cell.p_art is None:
        raise MedxferInputError("this protocol is a shortcut study; `medxfer study` runs one "
                                "cell per p_art (a single run needs cell.p_art)",
                                field="cell.p_art")
    from medxfer.data.shortcut_sets import confound_selection

    return confound_selection(source, sel, protocol.shortcut, cell.p_art, seed=protocol.seed,
                              fold=cell.fold)


def select_transfer(source: Source, protocol: ProtocolConfig, cell: CellConfig) -> Selection:
    """The rows of a ``transfer`` cell: few-shot training, validation and test parts of the
    test set ``cell.test_set`` (``source`` is that set's)."""
    name = cell.test_set
    if name not in protocol.test_sets or protocol.few_shot is None:
        raise MedxferInputError(f"cell.test_set {name!r} is not a few-shot test set of the "
                                f"protocol ({protocol.few_shot_sets()})", field="cell.test_set")
    pool, test = ood_parts(source, name, protocol.test_sets[name], protocol)
    rest, val = _split_rows(source, pool, protocol.few_shot.val_fraction,
                            (protocol.seed, _FEW_VAL, _crc(name)))
    train = nested_prefix(source, rest, fraction=cell.fraction or 1.0,
                          seed=(protocol.seed, _FEW, _crc(name)))
    return Selection(train, val, train, test)

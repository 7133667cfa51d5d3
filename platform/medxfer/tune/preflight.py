"""Preflight: what a driver checks before Ray starts or anything is written.

``medxfer train`` and ``medxfer sweep`` (and ``medxfer study``, whose protocol check plugs in as
an extra check) find bad input here, once, instead of in every trial: a sweep with a wrong
``data.root`` used to start Ray, fail every trial with a traceback each and leave a parent and
failed child runs in MLflow. All problems found are reported together in one message naming the
file, the key as the user wrote it (``data.root``, ``--set data.root``,
``search.space.data.flag``), the path itself and what was expected; the CLI exits 2 with nothing
started or written.

Two passes, so that the common mistakes cost no heavy import:

1. :func:`check_paths`, on the YAML as written (before the method-aware parse, which imports
   torch and torchvision): the typed models of :mod:`medxfer.config` (bad values and unknown
   keys by YAML path), ``data.root`` a folder holding some ``<data.flag>*.npz``,
   ``model.weights`` a file, the tracking store usable
   (:func:`medxfer.tracking.uri.check_store`: a scheme MLflow knows, a server that answers),
   and the backbone name (local names import nothing; ``torchvision:`` names torchvision,
   others timm);
2. :func:`check_inputs`, on the validated config (method and searcher names were checked by the
   parse): the data file and metadata of ``data.flag`` at ``data.size``, ``model.in_chans``
   against the data's channels, the weight file readable as a state dict, the transform
   pipelines; for a sweep a non-empty ``search.space``, every searched value validated as a
   trial would see it (a range by its two ends), and every searched value of the keys above.

An extra check is any ``fn(config: dict) -> None`` that raises
:class:`~medxfer.errors.MedxferInputError` (``study``'s protocol feasibility); its problem joins
the same message. Nothing here imports Ray or MLflow.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medxfer.config import absolute_path, get_path, set_path
from medxfer.errors import MedxferInputError

#: An extra check: raises MedxferInputError on a config it cannot accept.
Check = Callable[[dict], None]
#: Config keys whose searched values (choice/grid leaves) are checked one by one.
SEARCHED_KEYS = ("method", "data.root", "data.flag", "data.size", "data.as_rgb",
                 "model.backbone", "model.weights", "model.in_chans")
#: At most this many combinations of searched values are checked (each check is cached).
MAX_VARIANTS = 256
_SYNTH_HINT = "`medxfer data synth --out DIR` writes synthetic ones"


@dataclass
class Preflight:
    """Problems found so far; :meth:`raise_if_any` turns them into one error.

    Attributes:
        source: the YAML file (prefix of the message).
        written: config key -> how the user wrote it, e.g. ``{"data.root": "--set data.root"}``.
        problems: one ``<key>: <what is wrong>`` line each, in the order found.
        seen: results of the checks run so far, by (check, arguments).
    """

    source: str | None = None
    written: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seen: dict[tuple, str | None] = field(default_factory=dict, repr=False)

    def key(self, key: str) -> str:
        return self.written.get(key, key)

    def add(self, key: str, message: str) -> None:
        line = f"{self.key(key)}: {message}" if key else message
        if line not in self.problems:
            self.problems.append(line)

    def run(self, check: Callable[..., Any], *args: Any, key: str = "") -> Any:
        """``check(*args)``; a MedxferInputError it raises becomes a problem under ``key``."""
        try:
            return check(*args)
        except MedxferInputError as exc:
            self.add(key, _without_source(exc, self.source))
            return None

    def raise_if_any(self) -> None:
        if len(self.problems) == 1:
            raise MedxferInputError(self.problems[0], path=self.source)
        if self.problems:
            raise MedxferInputError(
                f"{len(self.problems)} problems, found before anything started:\n  "
                + "\n  ".join(self.problems), path=self.source)


def _without_source(exc: MedxferInputError, source: str | None) -> str:
    """The error's text without a file prefix that the combined message repeats."""
    if exc.path is not None and source is not None and str(exc.path) == str(source):
        rest = exc.detail
        return f"{exc.field}: {rest}" if exc.field and exc.line is None else rest
    return str(exc)


# --------------------------------------------------------------------------- pass 1: paths


def _check_root(config: Mapping[str, Any], pf: Preflight) -> None:
    root, flag = get_path(config, "data.root"), get_path(config, "data.flag")
    if not isinstance(root, str):
        return
    path = Path(absolute_path(root, Path.cwd()))
    holding = f" holding {flag}.npz" if isinstance(flag, str) else ""
    if not path.exists():
        pf.add("data.root", f"no such folder {path}; expected the folder of MedMNIST-layout "
                            f".npz files{holding} ({_SYNTH_HINT})")
    elif not path.is_dir():
        pf.add("data.root", f"{path} is a file; expected the folder of MedMNIST-layout .npz "
                            f"files{holding}")


def _check_any_flag_file(config: Mapping[str, Any], pf: Preflight) -> None:
    """No ``<flag>*.npz`` at all under an existing root: missing whatever the side (the exact
    file name for ``data.size`` is :func:`medxfer.data.medmnist.npz_path`'s, checked after the
    parse; this cheaper test needs no torch)."""
    import glob

    root, flag = get_path(config, "data.root"), get_path(config, "data.flag")
    if not isinstance(root, str) or not isinstance(flag, str):
        return
    path = Path(absolute_path(root, Path.cwd()))
    if path.is_dir() and not any(path.glob(f"{glob.escape(flag)}*.npz")):
        size = get_path(config, "data.size")
        pf.add("data.flag", _missing_flag(path, flag, size if isinstance(size, int) else 28))


def _check_manifest(config: Mapping[str, Any], pf: Preflight) -> None:
    """``data.manifest`` a CSV file and ``data.image_root`` (when given) a folder; the CSV's
    columns and images are read after the parse."""
    manifest, image_root = get_path(config, "data.manifest"), get_path(config, "data.image_root")
    if isinstance(manifest, str):
        path = Path(absolute_path(manifest, Path.cwd()))
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "no such file"
            pf.add("data.manifest", f"{what}: {path}; expected a CSV of image paths and labels "
                                    "(medxfer data check validates one)")
    if isinstance(image_root, str):
        path = Path(absolute_path(image_root, Path.cwd()))
        if not path.is_dir():
            pf.add("data.image_root", f"no such folder {path}; expected the folder the "
                                      "manifest's image paths are relative to")


def _check_data_paths(config: Mapping[str, Any], pf: Preflight,
                      searched: set[str] = frozenset()) -> None:
    """Data root, flag file, manifest and weight file of one configuration (keys in
    ``searched`` are checked per searched value, after the parse)."""
    if "data.root" not in searched:
        _check_root(config, pf)
        if "data.flag" not in searched and "data.size" not in searched:
            _check_any_flag_file(config, pf)
    _check_manifest(config, pf)
    if "model.weights" not in searched:
        _check_weights_file(config, pf)


def _check_weights_file(config: Mapping[str, Any], pf: Preflight) -> None:
    weights = get_path(config, "model.weights")
    if not isinstance(weights, str):
        return
    path = Path(absolute_path(weights, Path.cwd()))
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "no such file"
        pf.add("model.weights", f"{what}: {path}; expected a state dict written by "
                                "torch.save(model.state_dict(), PATH) (weights are never "
                                "downloaded), or model.weights: null for random initialisation")


def check_paths(raw: Mapping[str, Any], *, source: str | None = None,
                overrides: Mapping[str, Any] | None = None,
                cli_tracking_uri: str | None = None, sweep: bool = False) -> None:
    """Pass 1, on the YAML document as written: folders, files and the tracking store; then
    (with the stat checks passed) the backbone name and, for a ``sweep``, the ``search:``
    section (searcher name, ``num_samples``, leaves), which imports Ray but not torch.

    Args:
        raw: the experiment YAML (a mapping; anything else is left to the parse).
        source: the YAML file, for the message.
        overrides: ``--set`` values (``{"data.root": ...}``), applied first and named as
            ``--set data.root``.
        cli_tracking_uri: ``--tracking-uri``.
        sweep: the YAML runs as a sweep (its ``search:`` is validated).

    Raises:
        MedxferInputError: every problem found, in one message.
    """
    if not isinstance(raw, Mapping):
        return
    config = _with_overrides(raw, overrides)
    pf = Preflight(source, {k: f"--set {k}" for k in overrides or {}})
    _check_schema(config, pf)
    searched = _raw_space_keys(config.get("search"))
    _check_data_paths(config, pf, searched)
    _check_store(config, cli_tracking_uri, pf)
    pf.raise_if_any()  # the mistakes above cost no import at all
    if sweep:
        pf.run(_search_section, config.get("search"), source)
    backbone = get_path(config, "model.backbone")
    if isinstance(backbone, str) and "model.backbone" not in searched:
        # Before the parse: a timm name costs torch and timm, not the method registry too.
        _add(pf, "model.backbone", _cached(pf, _backbone, backbone))
    pf.raise_if_any()


def _search_section(search: Any, source: str | None) -> None:
    from medxfer.tune.search_config import parse_search

    parse_search(search, source=source)


def _check_schema(config: Mapping[str, Any], pf: Preflight) -> None:
    """The typed models of :mod:`medxfer.config` (pydantic only), so that a bad value and a
    missing folder are reported together; ``method_config`` needs the method registry and is
    left to the parse. Method defaults only fill keys the YAML leaves out, so nothing reported
    here would be accepted after they are merged in."""
    from pydantic import ValidationError

    from medxfer.config import ExperimentConfig, format_errors
    from medxfer.tune.experiment import SWEEP_ONLY_KEYS

    body = {k: v for k, v in config.items() if k != "method_config" and k not in SWEEP_ONLY_KEYS}
    try:
        ExperimentConfig.model_validate(body)
    except ValidationError as exc:
        for line in format_errors(exc):
            key, _, message = line.partition(": ")
            pf.add(key, message)


def _check_store(config: Mapping[str, Any], cli_tracking_uri: str | None,
                 pf: Preflight) -> None:
    """The tracking store's check; a problem with a URI from outside the YAML (the option, the
    environment) is raised as it is, without the YAML's name in front."""
    from medxfer.tracking.uri import check_store, tracking_uri_origin

    yaml_uri = get_path(config, "tracking.uri")
    yaml_uri = yaml_uri if isinstance(yaml_uri, str) else None
    try:
        check_store(cli_tracking_uri, yaml_uri)
    except MedxferInputError as exc:
        if tracking_uri_origin(cli_tracking_uri, yaml_uri) != "tracking.uri":
            raise
        pf.add("", str(exc))


def _with_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict:
    import copy

    config = copy.deepcopy(dict(raw))
    for key, value in (overrides or {}).items():
        set_path(config, key, value)
    return config


def _raw_space_keys(search: Any) -> set[str]:
    """Dotted keys of a ``search.space`` as written (nested mappings or dotted keys)."""
    space = search.get("space") if isinstance(search, Mapping) else None
    out: set[str] = set()

    def walk(prefix: str, node: Any) -> None:
        leaf = not isinstance(node, Mapping) or not node or any(
            k in ("loguniform", "uniform", "choice", "grid") for k in node)
        if leaf:
            out.add(prefix)
            return
        for k, sub in node.items():
            walk(f"{prefix}.{k}" if prefix else str(k), sub)

    if isinstance(space, Mapping):
        for k, sub in space.items():
            walk(str(k), sub)
    return out


# --------------------------------------------------------------------------- pass 2: inputs


def _problem(check: Callable[..., None], *args: Any) -> str | None:
    """The message of the MedxferInputError or ValueError ``check(*args)`` raises, else None."""
    try:
        check(*args)
    except MedxferInputError as exc:
        return exc.detail
    except ValueError as exc:
        return str(exc)
    return None


def _cached(pf: Preflight, check: Callable[..., None], *args: Any) -> str | None:
    """:func:`_problem`, once per (check, arguments) in one preflight (a sweep's variants
    repeat them)."""
    key = (check.__name__, *args)
    if key not in pf.seen:
        pf.seen[key] = _problem(check, *args)
    return pf.seen[key]


def _missing_flag(root: str | Path, flag: str, size: int) -> str:
    held = sorted({p.stem.rsplit("_", 1)[0] if p.stem.rsplit("_", 1)[-1].isdigit()
                   else p.stem for p in Path(root).glob("*.npz")})
    names = f"{flag}.npz or {flag}_{size}.npz" if size == 28 else f"{flag}_{size}.npz"
    return (f"no {names} in {root}; the folder holds {', '.join(held) or 'no .npz files'} "
            f"({_SYNTH_HINT})")


def _data_file(root: str, flag: str, size: int) -> None:
    from medxfer.data.medmnist import npz_path

    try:
        npz_path(root, flag, size)
    except MedxferInputError:
        raise MedxferInputError(_missing_flag(root, flag, size)) from None


def _data_info(root: str, flag: str) -> None:
    from medxfer.data.medmnist import dataset_info

    dataset_info(flag, root)


def _channels(root: str, flag: str) -> int:
    from medxfer.data.medmnist import dataset_info

    return dataset_info(flag, root).n_channels


def _manifest_rows(data: Mapping[str, Any]) -> None:
    """The manifest's rows, columns and labels as a trial reads them (no image decoded)."""
    from medxfer.config import DataConfig
    from medxfer.data.sources import load_source

    load_source(DataConfig.model_validate(dict(data)))


def _backbone(name: str) -> None:
    from medxfer.models.backbones import check_backbone

    check_backbone(name)


def _state_dict_file(path: str) -> None:
    """Readable by ``torch.load(weights_only=True)`` as tensors by name (memory-mapped: a
    large file costs no read)."""
    import torch

    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # files in the legacy (non-zip) format cannot be mapped
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise MedxferInputError(f"cannot read {path} ({type(exc).__name__}: {exc}); expected a "
                                "state dict written by torch.save(model.state_dict(), PATH)"
                                ) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise MedxferInputError(f"{path} holds {type(obj).__name__}, not a state dict (name -> "
                                "tensor, or one under 'state_dict' or 'model')")


def _transforms(spec: Any) -> None:
    from medxfer.data.transforms import build_transform

    build_transform(spec)


def _method(name: str) -> None:
    from medxfer.methods.registry import get_method

    get_method(name)


def _check_variant(config: Mapping[str, Any], pf: Preflight) -> None:
    """Every input check of pass 2 on one configuration (a sweep checks several)."""
    method = get_path(config, "method")
    if isinstance(method, str):
        _add(pf, "method", _cached(pf, _method, method))
    _check_root(config, pf)
    _check_manifest(config, pf)
    _check_weights_file(config, pf)
    manifest = get_path(config, "data.manifest")
    if isinstance(manifest, str) and Path(manifest).is_file():
        _add(pf, "data.manifest", _problem(_manifest_rows, config["data"]))
    root, flag = get_path(config, "data.root"), get_path(config, "data.flag")
    size = get_path(config, "data.size") or 28
    data_ok = False
    if isinstance(root, str) and isinstance(flag, str) and Path(root).is_dir():
        data_ok = not _add(pf, "data.flag", _cached(pf, _data_file, root, flag, size)) and \
            not _add(pf, "data.flag", _cached(pf, _data_info, root, flag))
    chans = get_path(config, "model.in_chans")
    if data_ok and isinstance(chans, int):
        have = 3 if get_path(config, "data.as_rgb") else _channels(root, flag)
        if chans != have:
            pf.add("model.in_chans", f"is {chans} but {flag} images have {have} channel(s) "
                                     "(data.as_rgb: true feeds 3)")
    backbone = get_path(config, "model.backbone")
    if isinstance(backbone, str):
        _add(pf, "model.backbone", _cached(pf, _backbone, backbone))
    weights = get_path(config, "model.weights")
    if isinstance(weights, str) and Path(weights).is_file():
        _add(pf, "model.weights", _cached(pf, _state_dict_file, weights))


def _add(pf: Preflight, key: str, problem: str | None) -> bool:
    if problem is not None:
        pf.add(key, problem)
    return problem is not None


def _check_transforms(config: Mapping[str, Any], pf: Preflight) -> None:
    for key in ("data.transforms", "data.eval_transforms"):
        spec = get_path(config, key)
        if spec is not None:
            problem = _problem(_transforms, spec)
            if problem is not None:
                pf.add(key, problem)


def _variants(config: Mapping[str, Any], space: Mapping[str, Any] | None
              ) -> Iterable[tuple[dict, dict[str, str]]]:
    """``(config, written)`` for each combination of the searched values of
    :data:`SEARCHED_KEYS` (the config itself when none is searched)."""
    leaves = {k: leaf for k, leaf in (space or {}).items()
              if k in SEARCHED_KEYS and leaf.kind in ("choice", "grid")}
    if not leaves:
        yield dict(config), {}
        return
    keys = list(leaves)
    combos = itertools.islice(itertools.product(*(leaves[k].values for k in keys)),
                              MAX_VARIANTS)
    for values in combos:
        variant = _with_overrides(config, dict(zip(keys, values, strict=True)))
        written = {k: f"search.space.{k} (value {v!r})" for k, v in zip(keys, values, strict=True)}
        if "data.root" in written:
            variant["data"]["root"] = absolute_path(variant["data"]["root"], Path.cwd())
        if "model.weights" in written and variant["model"].get("weights"):
            variant["model"]["weights"] = absolute_path(variant["model"]["weights"], Path.cwd())
        yield variant, written


def _sample_points(leaf: Any) -> list[Any]:
    """Values of a leaf to validate: every choice/grid value; a range's two ends (the upper
    end just inside it, as Tune samples ``[lower, upper)``)."""
    import math

    if leaf.kind in ("choice", "grid"):
        return list(leaf.values)
    lo, hi = leaf.values
    return [lo, math.nextafter(hi, lo)]


def _check_sampled(config: Mapping[str, Any], space: Mapping[str, Any], pf: Preflight) -> None:
    """Each searched value as a trial sees it, validated by the method-aware parse: a value the
    experiment schema refuses (``train.batch_size: 0``, ``train.momentum`` up to 1.5) fails
    here instead of in every trial that samples it."""
    from medxfer.methods.experiment import parse_experiment
    from medxfer.tune.experiment import SWEEP_ONLY_KEYS

    base = {k: v for k, v in config.items() if k not in SWEEP_ONLY_KEYS}
    for key, leaf in space.items():
        for value in _sample_points(leaf):
            try:
                parse_experiment(_with_overrides(base, {key: value}))
            except MedxferInputError as exc:
                lines = exc.detail.splitlines()
                why = "; ".join(line.strip() for line in lines[1:]) or lines[0]
                pf.add("", f"search.space.{key} (value {value!r}): {why}")


def check_inputs(config: Mapping[str, Any], *, source: str | None = None,
                 overrides: Mapping[str, Any] | None = None,
                 space: Mapping[str, Any] | None = None, sweep: bool = False,
                 extra: Sequence[Check] = ()) -> None:
    """Pass 2, on a validated experiment config (``ExperimentConfig.model_dump()``).

    Args:
        config: the validated config (paths absolute).
        source: the YAML file, for the message.
        overrides: the ``--set`` keys, named as ``--set <key>``.
        space: a sweep's ``search.space`` (leaves with ``kind`` and ``values``): every searched
            value of :data:`SEARCHED_KEYS` is checked.
        sweep: the config runs as a sweep: its space must not be empty.
        extra: further checks ``fn(config)`` (e.g. a study's protocol feasibility).

    Raises:
        MedxferInputError: every problem found, in one message.
    """
    written = {k: f"--set {k}" for k in overrides or {}}
    pf = Preflight(source, written)
    if sweep and not space:
        pf.add("search.space", "is empty; expected at least one searched key, e.g. "
                               "train.lr: {loguniform: [1.0e-4, 1.0e-1]} (one run without a "
                               "search: medxfer train)")
    if space:
        _check_sampled(config, space, pf)
    for variant, searched in _variants(config, space):
        pf.written = {**written, **searched}
        _check_variant(variant, pf)
    pf.written = written
    _check_transforms(config, pf)
    for check in extra:
        pf.run(check, dict(config))
    pf.raise_if_any()


def check_experiment(config: Mapping[str, Any], *, source: str | None = None,
                     space: Mapping[str, Any] | None = None, sweep: bool = False,
                     cli_tracking_uri: str | None = None, inputs: bool = True,
                     extra: Sequence[Check] = ()) -> None:
    """Both passes on a validated config (a driver that got the config from elsewhere, e.g. a
    resumed sweep's snapshot). ``inputs=False`` checks only the tracking store, the space and
    ``extra`` (a caller-provided trainable reads no data of the config)."""
    if inputs:
        check_paths(config, source=source, cli_tracking_uri=cli_tracking_uri)
        check_inputs(config, source=source, space=space, sweep=sweep, extra=extra)
        return
    pf = Preflight(source)
    _check_store(config, cli_tracking_uri, pf)
    if sweep and not space:
        pf.add("search.space", "is empty; expected at least one searched key")
    for check in extra:
        pf.run(check, dict(config))
    pf.raise_if_any()


def load_checked(path: str | os.PathLike, overrides: list[str] | None = None, *,
                 cli_tracking_uri: str | None = None, extra: Sequence[Check] = ()):
    """``medxfer train``'s config: pass 1 on the YAML, the parse, pass 2; the validated
    :class:`~medxfer.config.ExperimentConfig` with its tracking URI resolved.

    Raises:
        MedxferInputError: bad YAML, invalid values, or problems of either pass.
    """
    from medxfer.config import parse_overrides, read_yaml

    raw = read_yaml(path)
    over = parse_overrides(overrides or [])
    check_paths(raw, source=str(path), overrides=over, cli_tracking_uri=cli_tracking_uri)
    from medxfer.train.experiment import parse_run_config  # the method registry: torch

    cfg = parse_run_config(raw, source=str(path), overrides=over,
                           cli_tracking_uri=cli_tracking_uri)
    check_inputs(cfg.model_dump(), source=str(path), overrides=over, extra=extra)
    return cfg


# --------------------------------------------------------------------------- studies


def _study_rows(raw: Mapping[str, Any]) -> list[tuple[str, dict, dict]]:
    """``(prefix, row config, overrides)`` per study row as written (``methods[i].`` for a row
    that sets its own keys); the full validation is :func:`medxfer.tune.study_config.
    study_from_dict`'s."""
    from medxfer.config import deep_merge

    base = {k: v for k, v in raw.items() if k not in ("name", "methods", "search", "protocol")}
    methods = raw.get("methods")
    if not isinstance(methods, list):
        return [("", base, {})]
    rows = []
    for i, entry in enumerate(methods):
        over = {k: v for k, v in entry.items() if k != "name"} if isinstance(entry, dict) else {}
        rows.append((f"methods[{i}].", deep_merge(base, over), over))
    return rows


def _dotted(node: Any, prefix: str = "") -> set[str]:
    if not isinstance(node, Mapping):
        return {prefix} if prefix else set()
    return set().union(*(_dotted(v, f"{prefix}.{k}" if prefix else str(k))
                         for k, v in node.items())) if node else {prefix}


def check_study_paths(raw: Any, *, source: str | None = None,
                      cli_tracking_uri: str | None = None) -> None:
    """Pass 1 for ``medxfer study``, on the study YAML as written: every row's data root, flag
    file, manifest and weight file, every ``protocol.test_sets.<name>`` source, and the
    tracking store (stat calls only), then every row's backbone name (a local name imports
    nothing). The protocol's feasibility against the data is
    the study's own preflight (:func:`medxfer.tune.study_preflight.preflight`), run after the
    parse and before Ray.

    Raises:
        MedxferInputError: every problem found, in one message naming the YAML key as written
            (``data.root``, ``methods[1].model.weights``, ``protocol.test_sets.h1.root``).
    """
    if not isinstance(raw, Mapping):
        return
    pf = Preflight(source)
    for prefix, config, over in _study_rows(raw):
        mine = _dotted(over)
        pf.written = {k: (prefix + k if k in mine or any(m.startswith(k + ".") for m in mine)
                          or any(k.startswith(m + ".") for m in mine) else k)
                      for k in ("data.root", "data.flag", "data.manifest", "data.image_root",
                                "model.weights")}
        _check_data_paths(config, pf)
    protocol = raw.get("protocol")
    sets = protocol.get("test_sets") if isinstance(protocol, Mapping) else None
    for name, entry in (sets or {}).items():
        if not isinstance(entry, Mapping):
            continue
        where = f"protocol.test_sets.{name}"
        pf.written = {f"data.{k}": f"{where}.{k}"
                      for k in ("root", "flag", "manifest", "image_root")}
        size = entry.get("size") or get_path(raw, "data.size")
        _check_data_paths({"data": {**entry, "size": size}}, pf)
    pf.written = {}
    _check_store(raw, cli_tracking_uri, pf)
    pf.raise_if_any()  # the mistakes above cost no import at all
    for prefix, config, over in _study_rows(raw):
        backbone = get_path(config, "model.backbone")
        if isinstance(backbone, str):
            key = "model.backbone"
            pf.written = {key: prefix + key if get_path(over, key) is not None else key}
            _add(pf, key, _cached(pf, _backbone, backbone))
    pf.raise_if_any()

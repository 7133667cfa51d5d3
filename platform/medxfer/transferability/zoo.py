"""A zoo of source models to score: YAML, validated with pydantic.

The file is a YAML list (or a mapping with the list under ``sources:``); every entry is one
source model::

    - name: synthderm            # source flag: medxfer.source of the estimate runs
      architecture: tiny_cnn     # create_backbone name: tiny_cnn, a timm name, torchvision:<name>
      arch: tiny_cnn             # optional medxfer.arch flag (default: derived, resnet18 -> resnet)
      weights: weights/synthderm.pt   # local file, relative to this YAML's folder or absolute
      num_classes: 4             # optional: the source head's classes (logits for LEEP)
      normalization: half        # imagenet | half | {mean: [...], std: [...]}
      in_chans: 3                # default 3
      input_size: 28             # optional: the side the model is fed at

Every error names the file and the YAML path of the offending entry (``[1].weights``); a
missing weight file names the path it looked for. Nothing is downloaded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medxfer.errors import MedxferInputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_FLAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # raw flags: safe in MLflow filter strings


class Normalization(BaseModel):
    """Explicit per-channel mean and std (one value, or one per input channel)."""

    model_config = ConfigDict(extra="forbid")
    mean: list[float] = Field(min_length=1)
    std: list[float] = Field(min_length=1)

    @field_validator("std")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(s <= 0 for s in v):
            raise ValueError("every std must be > 0")
        return v


class SourceModel(BaseModel):
    """One zoo entry (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    architecture: str
    arch: Optional[str] = None
    weights: str
    num_classes: Optional[int] = Field(default=None, ge=1)
    normalization: Union[Literal["imagenet", "half"], Normalization]
    in_chans: int = Field(default=3, ge=1)
    input_size: Optional[int] = Field(default=None, ge=8)

    @field_validator("name", "arch")
    @classmethod
    def _flag(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not _FLAG.match(v):
            raise ValueError(f"{v!r} is not a flag (letters, digits, _ . + -)")
        return v

    @model_validator(mode="after")
    def _channels(self) -> "SourceModel":
        norm = self.normalization
        if isinstance(norm, Normalization):
            for field in ("mean", "std"):
                n = len(getattr(norm, field))
                if n not in (1, self.in_chans):
                    raise ValueError(f"normalization.{field} has {n} values; expected 1 or "
                                     f"in_chans = {self.in_chans}")
        return self

    @property
    def arch_flag(self) -> str:
        """The ``medxfer.arch`` tag: ``arch`` if given, else derived from ``architecture``."""
        return self.arch or arch_flag(self.architecture)

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel (mean, std) for ``in_chans`` channels."""
        norm = self.normalization
        if norm == "imagenet":
            mean, std = IMAGENET_MEAN, IMAGENET_STD
            if self.in_chans != 3:  # grey model: the channel average
                mean, std = (sum(mean) / 3,), (sum(std) / 3,)
        elif norm == "half":
            mean, std = (0.5,), (0.5,)
        else:
            mean, std = tuple(norm.mean), tuple(norm.std)
        return (_expand(mean, self.in_chans), _expand(std, self.in_chans))


def _expand(values: tuple[float, ...], n: int) -> tuple[float, ...]:
    return values * n if len(values) == 1 else values


class Zoo(BaseModel):
    """A validated zoo; ``path`` is the YAML it came from (None when built in code)."""

    sources: list[SourceModel]
    path: Optional[str] = None

    def weight_path(self, source: SourceModel) -> Path:
        """The weight file of ``source``: absolute, or relative to the YAML's folder."""
        p = Path(os.path.expanduser(source.weights))
        if not p.is_absolute() and self.path is not None:
            p = Path(self.path).parent / p
        return p.resolve()


def arch_flag(architecture: str) -> str:
    """Architecture flag of a backbone name (DESIGN.md raw flags): ``torchvision:resnet18`` ->
    ``resnet``, ``efficientnet_v2_s`` -> ``efficientnet``; unknown families keep the name."""
    from medxfer.tracking.schema import ARCHITECTURES

    base = architecture.split(":", 1)[-1].lower()
    for flag in sorted(ARCHITECTURES, key=len, reverse=True):
        if base.startswith(flag):
            return flag
    return base


def load_zoo(path: str | os.PathLike, *, check_files: bool = True) -> Zoo:
    """Read and validate a zoo YAML.

    Raises:
        MedxferInputError: unreadable or malformed YAML, a bad entry (with its YAML path),
            duplicate (name, arch), unknown architecture, or a missing weight file.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise MedxferInputError("zoo file not found", path=str(path))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MedxferInputError(f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
                                path=str(path), line=mark.line + 1 if mark else None) from None
    prefix = ""
    if isinstance(raw, dict) and set(raw) == {"sources"}:
        raw, prefix = raw["sources"], "sources"
    if not isinstance(raw, list) or not raw:
        raise MedxferInputError("expected a non-empty YAML list of source models (name, "
                                "architecture, weights, normalization, ...)", path=str(path),
                                field=prefix or "<root>")
    try:
        zoo = Zoo(sources=raw, path=str(path.resolve()))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = prefix + _yaml_path(err["loc"])
        msg = err["msg"]
        if len(exc.errors()) > 1:
            msg += f" (and {len(exc.errors()) - 1} more error(s))"
        raise MedxferInputError(msg, path=str(path), field=where.lstrip(".")) from None
    seen: dict[tuple[str, str], int] = {}
    for i, src in enumerate(zoo.sources):
        key = (src.name, src.arch_flag)
        if key in seen:
            raise MedxferInputError(f"duplicate source {src.name!r} with arch {src.arch_flag!r} "
                                    f"(also entry [{seen[key]}])", path=str(path),
                                    field=f"{prefix}[{i}].name")
        seen[key] = i
        try:
            check_architecture(src.architecture)
        except ValueError as exc:
            raise MedxferInputError(str(exc), path=str(path),
                                    field=f"{prefix}[{i}].architecture") from None
        if check_files:
            w = zoo.weight_path(src)
            if not w.is_file():
                raise MedxferInputError(
                    f"weight file not found: {w} (weights are never downloaded: save a state "
                    f"dict there with torch.save(model.state_dict(), path))", path=str(path),
                    field=f"{prefix}[{i}].weights")
    return zoo


def _yaml_path(loc) -> str:
    """pydantic loc -> ``[1].normalization.mean`` (union branch names such as
    ``Normalization`` or ``literal[...]`` left out)."""
    out = ""
    for x in loc:
        if x == "sources":
            continue
        if isinstance(x, int):
            out += f"[{x}]"
        elif x in SourceModel.model_fields or x in Normalization.model_fields:
            out += f".{x}"
    return out


def check_architecture(name: str) -> None:
    """Raise ValueError unless ``create_backbone`` knows ``name`` (nothing is built)."""
    from medxfer.models.backbones import check_backbone

    check_backbone(name)


# --------------------------------------------------------------------------- before scoring


def _state_dict(path: Path) -> dict:
    """The tensors of a weight file by name (memory-mapped; ``module.`` prefixes dropped)."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a legacy (non-zip) file cannot be mapped
        obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        return {}
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def head_classes(zoo: Zoo, source: SourceModel) -> int | None:
    """Output classes of the classifier stored in ``source``'s weight file; None if it has
    none.

    ``create_backbone`` fills the source head from the file only when the class counts match
    and silently starts a fresh one otherwise; this reads what the file holds instead: the
    ``head.*`` of a file saved from a model with a classifier (keys ``backbone.*``), else the
    2-d weight among the keys the headless architecture has no place for (the torchvision or
    timm classifier, e.g. ``fc.weight``). The architecture is built on the meta device: no
    memory, no initialisation.
    """
    import torch

    from medxfer.models import create_backbone

    state = _state_dict(zoo.weight_path(source))
    if any(k.startswith("backbone.") for k in state):
        w = state.get("head.weight")
        return int(w.shape[0]) if w is not None and w.ndim == 2 else None
    with torch.device("meta"):
        own = create_backbone(source.architecture, in_chans=source.in_chans).state_dict()
    extra = [v for k, v in state.items() if k not in own and k.endswith("weight") and v.ndim == 2]
    return int(extra[-1].shape[0]) if extra else None


def check_heads(zoo: Zoo, metrics: list[str], needs_logits: list[str]) -> None:
    """Refuse a source whose file's classifier does not have ``num_classes`` outputs when a
    metric of ``metrics`` reads the source head (``needs_logits``: LEEP): it would be scored on
    a freshly initialised head. Sources without ``num_classes`` are skipped (those metrics
    are then skipped with a reason).

    Raises:
        MedxferInputError: naming the zoo file, ``[i].num_classes``, the weight file and both
            class counts.
    """
    using = [m for m in metrics if m in needs_logits]
    if not using:
        return
    for i, src in enumerate(zoo.sources):
        if not src.num_classes:
            continue
        have = head_classes(zoo, src)
        if have == src.num_classes:
            continue
        held = f"a {have}-class classifier" if have else "no classifier"
        raise MedxferInputError(
            f"{zoo.weight_path(src)} holds {held}, not num_classes = {src.num_classes}; "
            f"{', '.join(using)} {'reads' if len(using) == 1 else 'read'} the source head's "
            "logits and would see a random head: "
            f"set num_classes to the file's classes{f' ({have})' if have else ''}, or remove "
            f"num_classes to skip {', '.join(using)} for this source", path=zoo.path,
            field=f"[{i}].num_classes")


def check_target(zoo: Zoo, root: str | os.PathLike, flag: str, size: int | None) -> None:
    """The target's data file at every side the sources read (``size``, else each source's
    ``input_size``, else 28) and one class per image.

    Raises:
        MedxferInputError: ``field='target'`` for a missing folder, ``field='flag'`` for a
            missing file, unknown metadata or a multi-label target.
    """
    from medxfer.data.medmnist import dataset_info, npz_path

    folder = Path(root)
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "no such folder"
        raise MedxferInputError(f"{what}: {folder.resolve()}; expected the folder holding "
                                f"{flag}.npz (MedMNIST layout)", field="target")
    for side in sorted({size or s.input_size or 28 for s in zoo.sources}):
        try:
            npz_path(folder, flag, side)
        except MedxferInputError as exc:
            raise MedxferInputError(exc.detail, field="flag") from None
    info = dataset_info(flag, folder)
    if info.multilabel:
        raise MedxferInputError(f"target {flag!r} is multi-label ({info.task}); the "
                                "transferability metrics need one class per image", field="flag")

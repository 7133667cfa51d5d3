"""Named augmentation presets, selectable from YAML: ``{name: preset, preset: medical_ssl}``.

A preset is a function ``(size, **options) -> pipeline spec``; the ``preset`` transform expands
it where it stands in a pipeline (``data.transforms: [{name: preset, preset: medical_ssl,
size: 224, energy_reference: ref.json}]``). Registered here:

* ``medical_ssl``: seed 001 (``001_a9715376ac5cbd5d.txt``) sec. III-C, rescale applied
  *before* the final crop. Energy-band normalisation (eq. 8; with ``energy_reference``: the
  bands and reference energies of ``medxfer data energy-reference``, else each image's own
  energies +- 20%), gamma in [1.8, 2.6], linear a I + b (a in [0.9, 1.1], b within 20% of the
  range), then :class:`~medxfer.data.multicrop.RescaleCrop`: rescale by s in [0.1, 0.7] of an
  original of side ``reference_size`` (default ``size * 2048 / 224``: the paper's 224 px crops
  of ~2048 px radiographs) and crop ``size`` at a random place, the final step. Departure: the
  pointwise gamma and linear steps commute with rescaling, but the energy normalisation runs at
  the stored resolution before the rescale (the reference file is computed at that resolution
  too), not after it as in the paper's listing.
* ``scc``, ``eval_scc``: seed 000 App. B (from :func:`medxfer.data.transforms.preset_spec`).

Unknown presets or options are a :class:`~medxfer.errors.MedxferInputError` listing the valid
ones.
"""

from __future__ import annotations

from typing import Any, Callable

from medxfer.data.multicrop import PAPER_SIDE_PER_CROP, SEED001_RESCALE
from medxfer.data.transforms import Compose, Transform, build_transform, register_transform
from medxfer.errors import MedxferInputError
from medxfer.registry import Registry

_PRESETS: Registry[Callable[..., list[dict]]] = Registry("preset")


def register_preset(name: str) -> Callable[[Callable[..., list[dict]]], Callable[..., list[dict]]]:
    """Decorator: register ``fn(size, **options) -> spec`` under ``name``; duplicates raise."""
    def wrap(fn):
        return _PRESETS.add(name, fn)
    return wrap


def list_presets() -> list[str]:
    """Names usable as ``{name: preset, preset: <name>}``."""
    return _PRESETS.names()


def preset_pipeline_spec(name: str, size: int = 224, **options: Any) -> list[dict]:
    """The spec of preset ``name`` at crop side ``size``."""
    if name not in _PRESETS:
        raise MedxferInputError(_PRESETS.unknown(name), field="preset")
    try:
        return _PRESETS[name](size, **options)
    except TypeError as exc:
        raise MedxferInputError(f"preset {name!r}: {exc}", field="preset") from None


@register_preset("medical_ssl")
def medical_ssl(size: int = 224, *, energy_reference: str | None = None,
                reference_size: float | None = None,
                rescale: tuple[float, float] | list[float] = SEED001_RESCALE) -> list[dict]:
    """Seed 001 III-C (module docstring)."""
    energy = ({"name": "energy_reference_normalize", "reference": str(energy_reference)}
              if energy_reference else {"name": "energy_band_normalize"})
    ref = reference_size if reference_size is not None else size * PAPER_SIDE_PER_CROP
    return [energy,
            {"name": "random_gamma", "gamma": [1.8, 2.6]},
            {"name": "random_linear", "a": [0.9, 1.1], "b": 0.2},
            {"name": "rescale_crop", "size": size, "scale": list(rescale), "reference_size": ref}]


def _legacy(name: str) -> Callable[..., list[dict]]:
    def spec(size: int = 224) -> list[dict]:
        from medxfer.data.transforms import preset_spec

        return preset_spec(name, size)
    return spec


for _name in ("scc", "eval_scc"):
    register_preset(_name)(_legacy(_name))


@register_transform("preset", random=True,
                    reference="000 App. B / 001 sec. III-C (named pipelines)")
class Preset(Transform):
    """A named preset as one pipeline step: ``{name: preset, preset: NAME, size: ..., ...}``.

    Args:
        preset: Preset name (:func:`list_presets`).
        size: Crop / output side.
        **options: The preset's own options (``medical_ssl``: ``energy_reference``,
            ``reference_size``, ``rescale``).
    """

    def __init__(self, preset: str, size: int = 224, **options: Any):
        self.preset, self.size, self.options = preset, int(size), dict(options)
        self.pipeline: Compose = build_transform(preset_pipeline_spec(preset, size, **options))

    def __call__(self, x, generator=None):
        return self.pipeline(x, generator)

"""``medxfer data ...``: write synthetic data (and, later, ``remove-text``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

data_app = typer.Typer(
    help="Data for the methods: synthetic MedMNIST-layout modalities (more verbs to come).\n\n"
         "Example: medxfer data synth --out data/synth",
    no_args_is_help=True,
)


@data_app.command()
def synth(
    out: Annotated[Optional[Path], typer.Option("--out", help="Output directory (created).",
                                                show_default=False)] = None,
    size: Annotated[int, typer.Option(help="Image side: 28, 64, 128 or 224.")] = 28,
    n_per_class: Annotated[int, typer.Option(
        help="Train images per class (val and test get half each).")] = 50,
    seed: Annotated[int, typer.Option(help="Seed; the same seed writes the same files.")] = 0,
    text: Annotated[bool, typer.Option(
        "--text/--no-text", help="Burn text into some images (clean copies kept).")] = False,
    text_prob: Annotated[float, typer.Option(help="Share of images with text.")] = 0.5,
    sites: Annotated[int, typer.Option(help="Acquisition sites per modality.")] = 3,
    modalities: Annotated[Optional[str], typer.Option(
        help="Comma-separated flags (default: all; see `medxfer data synth --list`).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the modalities and exit.")] = False,
) -> None:
    """Write synthetic modalities as MedMNIST .npz files (+ .json metadata) that the loader reads.

    Each modality has its own class structure, patients (2-4 correlated images each), sites and,
    with --text, burned-in text; see medxfer.data.synth for which modalities share features.

    Example: medxfer data synth --out data/synth --n-per-class 100 --text
    """
    from rich.progress import track

    from medxfer.data.synth import MODALITIES, synthesize

    if list_:
        for flag, m in MODALITIES.items():
            typer.echo(f"{flag:16s} {m.task:26s} {m.family:8s} {m.feature}")
        return
    if out is None:
        from medxfer.errors import MedxferInputError

        raise MedxferInputError("--out DIR is required (where to write the .npz files)",
                                field="out")
    flags = [f.strip() for f in modalities.split(",") if f.strip()] if modalities else None
    paths = synthesize(out, size=size, n_per_class=n_per_class, seed=seed, text=text,
                       text_prob=text_prob, n_sites=sites, modalities=flags,
                       progress=lambda it: track(list(it), description="synthesising"))
    typer.echo(f"wrote {len(paths)} modalities to {out}: {', '.join(p.name for p in paths)}")

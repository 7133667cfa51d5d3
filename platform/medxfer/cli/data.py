"""``medxfer data ...``: write synthetic data (and, later, ``remove-text``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

data_app = typer.Typer(
    help="Data for the methods: synthetic modalities (synth), CXR manifest checks (check), "
         "burned-in text removal (remove-text), SwAV reference energies (energy-reference).\n\n"
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
    attributes: Annotated[bool, typer.Option(
        "--attributes/--no-attributes",
        help="Write patient attributes (sex, age group) for every modality; synthlesion always "
             "has them.")] = False,
    modalities: Annotated[Optional[str], typer.Option(
        help="Comma-separated flags (default: all; see `medxfer data synth --list`), or none "
             "(only the CXR manifests).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the modalities and exit.")] = False,
    hospitals: Annotated[int, typer.Option(
        help="Also write this many shifted hospitals <flag>_h1.. of each modality (OOD test "
             "sets of a study).")] = 0,
    shift: Annotated[float, typer.Option(
        help="Acquisition shift of the hospitals, 0..1 (grows with the hospital number).")]
    = 0.5,
    cxr_patients: Annotated[int, typer.Option(
        help="Also write a synthetic chest X-ray manifest <out>/<cxr-name>.csv with this many "
             "patients (PNG and DICOM, 14 labels, patient ids, sites).")] = 0,
    cxr_name: Annotated[str, typer.Option(
        help="Name of the CXR manifest; comma-separated names write several corpora.")] = "cxr",
    cxr_shifts: Annotated[Optional[str], typer.Option(
        help="Comma-separated acquisition shift of each CXR manifest, 0..1 (default: --shift "
             "with --hospitals, else 0).")] = None,
) -> None:
    """Write synthetic modalities as MedMNIST .npz files (+ .json metadata) that the loader reads.

    Each modality has its own class structure, patients (2-4 correlated images each), sites and,
    with --text, burned-in text; see medxfer.data.synth for which modalities share features.
    synthlesion (only a randomly placed lesion carries the label) also gets lesion masks,
    <flag>_boxes.csv (split,index,x,y,w,h) and patient attributes.

    --hospitals N writes N shifted copies of each modality (new patients, a contrast, blur
    and noise shift growing with --shift), --cxr-patients N a CXR manifest with DICOM and PNG
    images (several with --cxr-name a,b --cxr-shifts 0,0.5: corpora with different
    acquisitions); see medxfer.data.synth_studies. A study's synthesize: section writes the
    same on its first run.

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
    names = [n.strip() for n in cxr_name.split(",") if n.strip()]
    shifts = _shifts(cxr_shifts, len(names), shift if hospitals else 0.0)
    flags = [f.strip() for f in modalities.split(",") if f.strip()] if modalities else None
    if flags == ["none"]:
        flags = []
    if flags != []:
        paths = synthesize(out, size=size, n_per_class=n_per_class, seed=seed, text=text,
                           text_prob=text_prob, n_sites=sites, attributes=attributes,
                           modalities=flags,
                           progress=lambda it: track(list(it), description="synthesising"))
        typer.echo(f"wrote {len(paths)} modalities to {out}: "
                   f"{', '.join(p.name for p in paths)}")
    if hospitals or cxr_patients:
        from medxfer.data.synth_studies import synthesize_cxr_manifest, synthesize_hospitals

        for flag in (flags if flags is not None else list(MODALITIES)):
            if hospitals:
                written = synthesize_hospitals(out, flag, hospitals=hospitals, shift=shift,
                                               size=size, n_per_class=n_per_class, seed=seed,
                                               n_sites=sites)
                typer.echo(f"wrote {len(written)} hospitals of {flag}: "
                           f"{', '.join(p.name for p in written)}")
        for name, cxr_shift in zip(names, shifts, strict=True) if cxr_patients else ():
            csv_path = synthesize_cxr_manifest(out, name, patients=cxr_patients,
                                               size=max(size, 32), seed=seed, n_sites=sites,
                                               shift=cxr_shift)
            typer.echo(f"wrote the CXR manifest {csv_path} (shift {cxr_shift:g})")


def _shifts(text: str | None, n: int, default: float) -> list[float]:
    """``--cxr-shifts``: one shift in [0, 1] per manifest name."""
    from medxfer.errors import MedxferInputError

    if text is None:
        return [default] * n
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if len(values) != n or not all(0 <= v <= 1 for v in values):
        raise MedxferInputError(f"--cxr-shifts {text!r}: expected {n} comma-separated "
                                "numbers in [0, 1], one per --cxr-name", field="cxr-shifts")
    return values


@data_app.command()
def check(
    manifest: Annotated[Path, typer.Argument(help="CSV manifest (path, label(s), patient_id, "
                                                  "site, age) or an image folder.")],
    labels: Annotated[Optional[str], typer.Option(
        help="Label names in index order, comma-separated, or cxr14 / chexpert "
             "(default: from the data).")] = None,
    uncertain: Annotated[str, typer.Option(
        help="CheXpert -1 in one-hot columns: error, zero or one.")] = "error",
    decode: Annotated[bool, typer.Option(
        "--decode/--no-decode", help="Decode every image to find corrupt ones.")] = True,
) -> None:
    """Validate a chest X-ray manifest (or image folder) and print counts and bad files.

    Prints images per label, per site and per patient, and every missing or unreadable file
    with its path; exits 2 when there is any (or the CSV itself is malformed).

    Example: medxfer data check data/cxr/train.csv --labels cxr14
    """
    from collections import Counter

    from medxfer.data.cxr import read_image, read_manifest, scan_folder
    from medxfer.errors import MedxferInputError

    if manifest.is_dir():
        m = scan_folder(manifest)
    else:
        m = read_manifest(manifest, label_names=labels, uncertain=uncertain, on_missing="skip")
    bad = [(p, why) for p, why in m.skipped]
    if decode:
        for p in m.paths:
            try:
                read_image(p)
            except MedxferInputError as exc:
                bad.append((str(p), str(exc).split(": ", 1)[-1]))
    kind = "multi-label" if m.multilabel else "single-label"
    typer.echo(f"{m.source}: {len(m) + len(m.skipped)} images listed, {len(m)} found, "
               f"{len(m.label_names)} labels ({kind})")
    typer.echo("per label, found images" + (" (positives)" if m.multilabel else "") + ":")
    for name, count in m.label_counts().items():
        typer.echo(f"  {name:30s} {count}")
    if m.multilabel:
        typer.echo(f"  {'(no label)':30s} {int((m.labels.sum(1) == 0).sum())}")
    if m.sites is not None:
        typer.echo("per site:")
        for site, count in sorted(Counter(m.sites.tolist()).items()):
            typer.echo(f"  {site:30s} {count}")
    if m.patients is not None:
        per = sorted(Counter(m.patients.tolist()).values())
        typer.echo(f"patients: {len(per)} (images per patient: min {per[0]}, "
                   f"median {per[len(per) // 2]}, max {per[-1]})")
    if bad:
        typer.echo(f"bad files: {len(bad)}")
        for p, why in bad:
            typer.echo(f"  {p}: {why}")
        raise MedxferInputError(f"{len(bad)} missing or unreadable image(s), listed above",
                                path=m.source)
    typer.echo("ok: no bad files")


@data_app.command("energy-reference")
def energy_reference_cmd(
    out: Annotated[Path, typer.Option("--out", help="JSON file to write.",
                                      show_default=False)],
    root: Annotated[Optional[Path], typer.Option(
        help="Data root with MedMNIST-layout .npz files (with --flag).")] = None,
    flag: Annotated[Optional[str], typer.Option(help="Dataset flag under --root.")] = None,
    manifest: Annotated[Optional[Path], typer.Option(
        help="CSV manifest or image folder instead of --root/--flag.")] = None,
    size: Annotated[int, typer.Option(
        help="Image side the transform will see (energies depend on it).")] = 28,
    split: Annotated[str, typer.Option(help="Split of --flag: train, val or test.")] = "train",
    n_images: Annotated[int, typer.Option(
        help="R reference images, drawn at random (seed 001: 1000).")] = 1000,
    sigmas: Annotated[str, typer.Option(
        help="Band-edge Gaussian sigmas in pixels, ascending, comma-separated.")] = "1,2,4",
    seed: Annotated[int, typer.Option(help="Which images are drawn.")] = 0,
) -> None:
    """Compute the eq. 8 reference band energies (seed 001 III-C) from R sample images.

    Writes mean and std of each band's energy over the R images; the transform
    {name: energy_reference_normalize, reference: FILE} (or the medical_ssl preset's
    energy_reference option) samples the reference energy from mean +- std.

    \b
    Example: medxfer data energy-reference --root data/synth --flag synthchest --size 28 \\
        --n-images 1000 --out data/synth/energy_ref.json
    """
    from rich.progress import track

    from medxfer.data.energy_reference import compute_energy_reference, write_energy_reference
    from medxfer.errors import MedxferInputError

    try:
        bands = [float(v) for v in sigmas.split(",") if v.strip()]
    except ValueError:
        raise MedxferInputError(f"--sigmas {sigmas!r}: expected numbers like 1,2,4",
                                field="sigmas") from None
    if (manifest is None) == (root is None or flag is None):
        raise MedxferInputError("give either --root and --flag, or --manifest",
                                field="manifest" if manifest is not None else "root")
    if manifest is not None:
        from medxfer.data.cxr import CXRDataset

        dataset = CXRDataset.from_folder(manifest, size=size) if manifest.is_dir() else \
            CXRDataset.from_csv(manifest, size=size, on_error="raise")
        source = str(manifest)
    else:
        from medxfer.data.medmnist import MedMNISTDataset, npz_path

        if not root.is_dir():  # else the dataset blames --flag for the missing folder
            raise MedxferInputError(f"--root: no such folder {root.resolve()}; expected the "
                                    f"folder holding {flag}.npz (MedMNIST layout)")
        dataset = MedMNISTDataset(root, flag, split, size)
        source = str(npz_path(root, flag, size))
    ref = compute_energy_reference(dataset, n_images, bands, seed,
                                   progress=lambda it: track(list(it), description="energies"))
    ref["source"] = source
    path = write_energy_reference(ref, out)
    typer.echo(f"wrote {path}: {ref['n_images']} images, bands {ref['sigmas']}, "
               f"mean {[round(m, 4) for m in ref['mean']]}")


def _register_remove_text() -> None:
    from medxfer.cli.text_removal import remove_text_cmd

    data_app.command("remove-text")(remove_text_cmd)


_register_remove_text()

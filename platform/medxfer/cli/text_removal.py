"""``medxfer data remove-text IN OUT``: text removal (DCE stage 1) over a folder.

The command is a plain function with Typer annotations; ``medxfer.cli`` registers it under the
``data`` group (``remove_text_cmd`` -> ``remove-text``).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from medxfer.errors import MedxferInputError, check_choice

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
NPZ_SUFFIX = ".npz"


class _Unreadable(Exception):
    pass


def _read_image(path: Path):
    import cv2
    import numpy as np

    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise _Unreadable("not a readable PNG/JPEG image")
    return img


def _write_image(path: Path, img, jpeg_quality: int) -> None:
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if path.suffix.lower() in (".jpg", ".jpeg") \
        else []
    ok, buf = cv2.imencode(path.suffix, img, params)
    if not ok:
        raise _Unreadable(f"could not encode {path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    buf.tofile(str(path))


def _read_npz(path: Path) -> dict:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError ...
        raise _Unreadable(f"not a readable .npz ({type(exc).__name__}: {exc})") from exc
    for k, a in arrays.items():
        if k.endswith("_images") and a.ndim not in (3, 4):
            raise _Unreadable(f"{k} has shape {a.shape}, expected (N, H, W) or (N, H, W, C)")
    return arrays


def remove_text_cmd(
    input_dir: Annotated[Path, typer.Argument(help="Folder of images (searched recursively).",
                                              show_default=False)],
    output_dir: Annotated[Path, typer.Argument(help="Output folder; mirrors INPUT_DIR's layout.",
                                               show_default=False)],
    detector: Annotated[str, typer.Option(
        help="auto (EasyOCR when its model files are in --model-dir / $MEDXFER_EASYOCR_DIR, "
             "else classical), easyocr, or classical (OpenCV morphology).")] = "auto",
    model_dir: Annotated[Optional[Path], typer.Option(
        help="Folder holding EasyOCR's craft_mlt_25k.pth and english_g2.pth (never downloaded).",
        show_default=False)] = None,
    glob: Annotated[str, typer.Option(
        help="File pattern, matched in every subfolder (.png/.jpg/.jpeg images and MedMNIST "
             ".npz files, whose *_images arrays are all cleaned).")] = "*.png",
    mask_mode: Annotated[str, typer.Option(
        help="pixels: inpaint the text strokes inside each box; box: the whole boxes.")] = "pixels",
    max_stroke: Annotated[Optional[int], typer.Option(
        help="Classical detector: widest text stroke in pixels (default max(6, min(H, W) // "
             "170)); raise it for big bold labels.", show_default=False)] = None,
    dilate: Annotated[int, typer.Option(help="Grow the stroke mask by this many pixels.")] = 2,
    inpaint_radius: Annotated[float, typer.Option(help="cv2.inpaint radius in pixels.")] = 3.0,
    method: Annotated[str, typer.Option(help="Inpainting: telea or ns (Navier-Stokes).")] = "telea",
    jpeg_quality: Annotated[int, typer.Option(
        help="Quality for re-encoded JPEGs (JPEG is lossy: untouched pixels may change).")] = 95,
    fail_on_error: Annotated[bool, typer.Option(
        "--fail-on-error", help="Exit with code 2 at the first unreadable file instead of "
                                "skipping it.")] = False,
) -> None:
    """Remove burned-in text (DCE stage 1): detect text boxes, inpaint only those pixels.

    Writes the cleaned files to OUTPUT_DIR with the same relative paths, and a report
    text_boxes.csv (file, x0, y0, x1, y1: half-open pixel boxes; .npz entries are named
    FILE:ARRAY[INDEX]). Unreadable files are skipped and listed (--fail-on-error: exit 2).

    Example: medxfer data remove-text scans/ scans_clean/
    """
    import numpy as np
    from tqdm import tqdm

    from medxfer.data.text_removal import get_detector, remove_text

    if not input_dir.is_dir():
        raise MedxferInputError("input folder not found", path=str(input_dir))
    check_choice(method, ("telea", "ns"), "--method")
    check_choice(mask_mode, ("pixels", "box"), "--mask-mode")
    check_choice(detector, ("auto", "easyocr", "classical"), "--detector")
    if output_dir.resolve() == input_dir.resolve():
        raise MedxferInputError("output folder must differ from the input folder",
                                path=str(output_dir))
    det = get_detector(detector, model_dir)  # MedxferInputError (exit 2) if models are missing
    if max_stroke is not None and det.name == "classical":
        det.max_stroke = max_stroke
    out_root = output_dir.resolve()
    files = sorted(
        p for p in input_dir.rglob(glob)
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | {NPZ_SUFFIX}
        and out_root not in p.resolve().parents)
    output_dir.mkdir(parents=True, exist_ok=True)
    typer.echo(f"remove-text: {len(files)} file(s) in {input_dir}, detector {det.name}")

    kwargs = dict(dilate=dilate, inpaint_radius=inpaint_radius, method=method,
                  mask_mode=mask_mode)
    rows: list[tuple[str, int, int, int, int]] = []
    skipped: list[tuple[str, str]] = []
    n_images = 0
    for path in tqdm(files, desc="remove-text", unit="file", file=sys.stderr):
        rel = path.relative_to(input_dir)
        name = rel.as_posix()
        try:
            if path.suffix.lower() == NPZ_SUFFIX:
                arrays = _read_npz(path)
                for key in sorted(k for k in arrays if k.endswith("_images")):
                    cleaned = arrays[key].copy()
                    for i, img in enumerate(arrays[key]):
                        boxes = det.detect(img)
                        cleaned[i], _ = remove_text(img, boxes=boxes, **kwargs)
                        rows += [(f"{name}:{key}[{i}]", *b) for b in boxes]
                        n_images += 1
                    arrays[key] = cleaned
                dest = output_dir / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(dest, **arrays)
            else:
                img = _read_image(path)
                boxes = det.detect(img)
                cleaned, _ = remove_text(img, boxes=boxes, **kwargs)
                _write_image(output_dir / rel, cleaned, jpeg_quality)
                rows += [(name, *b) for b in boxes]
                n_images += 1
        except _Unreadable as exc:
            if fail_on_error:
                typer.secho(f"error: {path}: {exc}", err=True, fg="red")
                raise typer.Exit(code=2) from exc
            skipped.append((str(path), str(exc)))

    report = output_dir / "text_boxes.csv"
    with open(report, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["file", "x0", "y0", "x1", "y1"])
        wr.writerows(rows)
    typer.echo(f"cleaned {n_images} image(s) from {len(files) - len(skipped)} file(s); "
               f"{len(rows)} text box(es) -> {report}")
    if skipped:
        typer.secho(f"skipped {len(skipped)} unreadable file(s):", err=True, fg="yellow")
        for p, why in skipped:
            typer.secho(f"  {p}: {why}", err=True, fg="yellow")

"""``medxfer analyze ...``: saliency, domain-gap, similarity, spectrum.

Every verb reads its inputs first (a bad option, file or field exits 2 before anything is
written), computes, moves its tables and figures into ``--output`` and records one run
(``medxfer.kind=analysis``) in experiment ``analysis/<--name>`` with the files as artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from medxfer.cli.common import TrackingUriOption, checked_store

analyze_app = typer.Typer(
    name="analyze",
    help="Analyses of models and datasets: where models look (saliency, hit rate), how far "
         "datasets are apart (domain gap), what transfer changes inside a model (CCA, "
         "prediction similarity) and spectra. Results: CSV + PNG in --output and an MLflow run "
         "in analysis/<name>.\n\n"
         "Example: medxfer analyze domain-gap --data data/synth --flags synthchest,synthpneumonia",
    no_args_is_help=True,
)

NameOption = Annotated[str, typer.Option(
    "--name", help="Experiment analysis/NAME receiving the run.")]
OutputOption = Annotated[Optional[Path], typer.Option(
    "--output", help="Folder for the tables and figures (default: analyses/<name>/<verb>).",
    show_default=False)]
DataOption = Annotated[Path, typer.Option(
    "--data", help="Folder of MedMNIST-layout .npz files (e.g. from `medxfer data synth`).",
    show_default=False)]
SplitOption = Annotated[str, typer.Option(help="Split to read: train, val or test.")]
SizeOption = Annotated[int, typer.Option(help="Image side of the .npz: 28, 64, 128 or 224.")]
ModelOption = Annotated[Optional[str], typer.Option(
    "--model", help="runs:/<run_id>: the run's model.pt (or encoder.pt) artifact.",
    show_default=False)]
WeightsOption = Annotated[Optional[Path], typer.Option(
    "--weights", help="Local weight file (state dict); needs --backbone.", show_default=False)]
BackboneOption = Annotated[Optional[str], typer.Option(
    "--backbone", help="create_backbone name (tiny_cnn, a timm name, torchvision:<name>); "
                       "default for runs: their 'backbone' param.", show_default=False)]


def _run(verb: str, name: str, output: Path | None, tracking_uri: str | None,
         compute: Callable[[Path], object]) -> None:
    """Check the name, compute into a staging folder, move the files, log the run, echo."""
    from medxfer.analyses.record import log_run, staging
    from medxfer.errors import MedxferInputError
    from medxfer.tracking import schema

    try:
        schema.experiment_name("analysis", name)
    except ValueError as exc:
        raise MedxferInputError(str(exc), field="--name") from None
    out = output or Path("analyses") / name / verb
    with staging(out) as tmp:
        result = compute(tmp)
    run_id = log_run(tracking_uri, name, verb, result, out)
    for line in result.lines:
        typer.echo(line)
    typer.echo(f"run {run_id} in analysis/{name}; files in {out}: {', '.join(result.files)}")


def _images(data: Path, flag: str, split: str, size: int, n_images: int | None, seed: int = 0):
    from medxfer.analyses.inputs import load_images

    return load_images(data, flag, split, size=size, limit=n_images, seed=seed)


def _names(text: str, option: str) -> list[str]:
    from medxfer.errors import MedxferInputError

    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise MedxferInputError("expected a comma-separated list", field=option)
    return names


@analyze_app.command()
def saliency(
    flag: Annotated[str, typer.Option("--flag", help="Dataset flag (<flag>.npz in --data).",
                                      show_default=False)],
    data: DataOption,
    model: ModelOption = None,
    weights: WeightsOption = None,
    backbone: BackboneOption = None,
    split: SplitOption = "test",
    size: SizeOption = 28,
    n_images: Annotated[Optional[int], typer.Option(
        help="Random images of the split to read (default: all).", show_default=False)] = None,
    methods: Annotated[str, typer.Option(help="Comma-separated: gradcam, ig.")] = "gradcam,ig",
    boxes: Annotated[Optional[Path], typer.Option(
        "--boxes", help="Boxes CSV (split,index,x,y,w,h) instead of the split's masks.",
        show_default=False)] = None,
    target_class: Annotated[Optional[int], typer.Option(
        help="Class whose score is explained (default: each image's label).",
        show_default=False)] = None,
    layer: Annotated[Optional[str], typer.Option(
        help="Grad-CAM layer (module name; default: the final feature map).",
        show_default=False)] = None,
    ig_steps: Annotated[int, typer.Option(help="Integrated-gradients steps.")] = 32,
    name: NameOption = "default",
    output: OutputOption = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Saliency maps (captum Grad-CAM, Integrated Gradients) and the pointing-game hit rate.

    Explains each image with a lesion region (masks of the split, or --boxes) and scores a hit
    when the map's maximum lies inside the region (seed 000 Fig. 5); chance is the mean region
    area. Writes hit_rate.csv, saliency_hits.csv, saliency_maps.npz, saliency_grid.png.

    \b
    Example:
      medxfer analyze saliency --model runs:/3f2a... --data data/synth --flag synthlesion \\
          --boxes data/synth/synthlesion_boxes.csv --name lesions
    """
    from medxfer.analyses.inputs import resolve_model
    from medxfer.analyses.saliency import run_saliency

    if ig_steps < 1:
        from medxfer.errors import MedxferInputError

        raise MedxferInputError(f"--ig-steps must be >= 1, got {ig_steps}", field="--ig-steps")
    # The run is written last; a --model runs:/ is read first, from a store that must exist.
    tracking_uri = checked_store(tracking_uri, read_only=model is not None)
    ref = resolve_model(model, weights, backbone, tracking_uri=tracking_uri)
    images = _images(data, flag, split, size, n_images)
    _run("saliency", name, output, tracking_uri,
         lambda out: run_saliency(ref, images, out, methods=_names(methods, "--methods"),
                                  boxes=boxes, target_class=target_class, layer=layer,
                                  n_steps=ig_steps))


@analyze_app.command("domain-gap")
def domain_gap(
    flags: Annotated[str, typer.Option(
        "--flags", help="Comma-separated dataset flags (<flag>.npz in --data).",
        show_default=False)],
    data: DataOption,
    split: SplitOption = "test",
    size: SizeOption = 28,
    n_images: Annotated[Optional[int], typer.Option(
        help="Random images per dataset (default: all).", show_default=False)] = None,
    by_site: Annotated[bool, typer.Option(
        "--by-site/--no-by-site", help="Compare each dataset's acquisition sites.")] = False,
    permutations: Annotated[int, typer.Option(help="Permutations of the MMD test.")] = 500,
    levels: Annotated[int, typer.Option(help="GLCM grey levels (2-256).")] = 32,
    seed: Annotated[int, typer.Option(help="Seed (image sample, permutations, MDS).")] = 0,
    name: NameOption = "default",
    output: OutputOption = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Domain gap between datasets: intensity + GLCM features, MMD with p-values, MDS map.

    Per image the grey mean and std and four GLCM properties in 4 directions (seed 000 App.
    A.2); MMD (Gaussian kernel, median heuristic) between every pair with a permutation
    p-value; metric MDS of the distances. Writes domain_features.csv, mmd.csv, mds.csv,
    domain_gap_mds.png, mmd_matrix.png.

    \b
    Example:
      medxfer analyze domain-gap --data data/synth --flags synthchest,synthpneumonia,synthoct
      medxfer analyze domain-gap --data data/synth --flags synthpneumonia --by-site
    """
    from medxfer.analyses.domain_gap import run_domain_gap
    from medxfer.errors import MedxferInputError

    if permutations < 0 or not 2 <= levels <= 256:
        raise MedxferInputError("--permutations must be >= 0 and --levels in 2..256",
                                field="--permutations" if permutations < 0 else "--levels")
    tracking_uri = checked_store(tracking_uri, read_only=False)
    sets = [_images(data, f, split, size, n_images, seed) for f in _names(flags, "--flags")]
    _run("domain-gap", name, output, tracking_uri,
         lambda out: run_domain_gap(sets, out, by_site=by_site, n_permutations=permutations,
                                    levels=levels, seed=seed))


def _two_models(models: list[str], weights: list[Path], backbones: list[str],
                tracking_uri: str | None):
    from medxfer.analyses.inputs import resolve_model
    from medxfer.errors import MedxferInputError

    if len(models) + len(weights) != 2:
        raise MedxferInputError(f"similarity compares two models; got {len(models)} --model and "
                                f"{len(weights)} --weights", field="--model")
    if weights and len(backbones) not in (1, len(weights)):
        raise MedxferInputError("give one --backbone for all --weights or one per --weights",
                                field="--backbone")
    refs = [resolve_model(m, None, backbones[0] if backbones and not weights else None,
                          tracking_uri=tracking_uri) for m in models]
    for k, w in enumerate(weights):
        bb = backbones[k if len(backbones) > 1 else 0] if backbones else None
        refs.append(resolve_model(None, w, bb, option="--weights"))
    return refs


@analyze_app.command()
def similarity(
    flag: Annotated[str, typer.Option("--flag", help="Dataset of the stimulus images.",
                                      show_default=False)],
    data: DataOption,
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", help="runs:/<run_id> (repeat for the second model).",
        show_default=False)] = None,
    weights: Annotated[Optional[list[Path]], typer.Option(
        "--weights", help="Local weight file (repeatable); with --backbone.",
        show_default=False)] = None,
    backbone: Annotated[Optional[list[str]], typer.Option(
        "--backbone", help="Backbone of the --weights (once for all, or once per file).",
        show_default=False)] = None,
    split: SplitOption = "test",
    size: SizeOption = 28,
    n_images: Annotated[int, typer.Option(help="Stimulus images (random, from the split).")] = 200,
    layers: Annotated[Optional[str], typer.Option(
        help="Comma-separated backbone layer names (default: every shared Conv2d).",
        show_default=False)] = None,
    max_rows: Annotated[int, typer.Option(help="Rows n*h*w sampled per repeat (thesis: "
                                               "~20,000).")] = 20_000,
    max_channels: Annotated[int, typer.Option(help="Channels sampled (thesis: 64).")] = 64,
    repeats: Annotated[int, typer.Option(help="Repeats averaged (thesis: 5).")] = 5,
    keep_variance: Annotated[float, typer.Option(
        help="Variance kept by the SVD step before CCA (SVCCA).")] = 0.99,
    seed: Annotated[int, typer.Option(help="Seed of the image and row/channel samples.")] = 0,
    name: NameOption = "default",
    output: OutputOption = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Layer-wise CCA similarity and prediction similarity of two models (thesis ch. 3).

    Activations of the same layers over stimulus images, reshaped to (n*h*w, channels), SVD to
    99% variance then CCA, mean canonical correlation per layer (eq. 3.1); prediction similarity
    P(same mistake) with the value expected of independent classifiers (eq. 3.2). Writes
    cca.csv, cca_layers.png, prediction_similarity.csv.

    \b
    Example:
      medxfer analyze similarity --model runs:/aaa... --model runs:/bbb... \\
          --data data/synth --flag synthpneumonia --name transfer
    """
    from medxfer.analyses.similarity import run_similarity
    from medxfer.errors import MedxferInputError

    if min(max_rows, max_channels, repeats, n_images) < 1:
        raise MedxferInputError("--max-rows, --max-channels, --repeats and --n-images must be "
                                ">= 1", field="--max-rows")
    tracking_uri = checked_store(tracking_uri, read_only=bool(model))
    ref_a, ref_b = _two_models(model or [], weights or [], backbone or [], tracking_uri)
    images = _images(data, flag, split, size, n_images, seed)
    wanted = _names(layers, "--layers") if layers else None
    _run("similarity", name, output, tracking_uri,
         lambda out: run_similarity(ref_a, ref_b, images, out, layers=wanted, max_rows=max_rows,
                                    max_channels=max_channels, repeats=repeats,
                                    keep_variance=keep_variance, seed=seed))


@analyze_app.command()
def spectrum(
    flag: Annotated[str, typer.Option("--flag", help="Dataset flag (<flag>.npz in --data).",
                                      show_default=False)],
    data: DataOption,
    model: ModelOption = None,
    weights: WeightsOption = None,
    backbone: BackboneOption = None,
    split: SplitOption = "test",
    size: SizeOption = 28,
    n_images: Annotated[Optional[int], typer.Option(
        help="Random images of the split (default: all).", show_default=False)] = None,
    name: NameOption = "default",
    output: OutputOption = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Radial power spectral density (thesis eq. 5.1) of images and of input gradients.

    Without a model: the PSD of the dataset's images. With --model or --weights: also the PSD
    of the gradient of the loss w.r.t. the input (the model's spectral learning priority, thesis
    Fig. 5.3). Writes psd.csv and psd.png.

    \b
    Example:
      medxfer analyze spectrum --data data/synth --flag synthlesion \\
          --weights weights/lesion.pt --backbone tiny_cnn
    """
    from medxfer.analyses.inputs import resolve_model
    from medxfer.analyses.spectrum import run_spectrum

    tracking_uri = checked_store(tracking_uri, read_only=model is not None)
    ref = None
    if model is not None or weights is not None:
        ref = resolve_model(model, weights, backbone, tracking_uri=tracking_uri)
    images = _images(data, flag, split, size, n_images)
    _run("spectrum", name, output, tracking_uri, lambda out: run_spectrum(images, out, ref=ref))

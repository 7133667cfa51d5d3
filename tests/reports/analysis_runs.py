"""Analysis runs and a shortcut study for the report tests, written by the real writers:
``medxfer analyze`` (every verb, on small synthetic data and untrained tiny CNNs) and
:func:`medxfer.reports.study.record_shortcut` on a study parent run."""

from __future__ import annotations

from pathlib import Path

#: (source, p_art) -> per-fold (i.i.d. AUC, o.o.d. AUC) of the shortcut study's cells.
SHORTCUT = {
    ("imagenet", 0.0): [(0.80, 0.78), (0.82, 0.80), (0.78, 0.76)],
    ("imagenet", 0.5): [(0.90, 0.55), (0.92, 0.50), (0.88, 0.60)],
    ("imagenet", 1.0): [(0.99, 0.10), (0.98, 0.20), (0.97, 0.15)],
    ("radimagenet", 0.0): [(0.79, 0.77), (0.81, 0.79), (0.80, 0.78)],
    ("radimagenet", 0.5): [(0.88, 0.70), (0.87, 0.72), (0.89, 0.68)],
    ("radimagenet", 1.0): [(0.97, 0.45), (0.96, 0.50), (0.98, 0.40)],
}
ANALYSES = ("saliency", "domain-gap", "similarity", "spectrum")


def shortcut_records() -> list[dict]:
    return [{"row": source, "phase": "train", "p_art": p_art, "fold": k, "status": "FINISHED",
             "run_id": f"{source}-{p_art}-{k}",
             "metrics": {"test_auc": iid, "ood_test_auc": ood}}
            for (source, p_art), folds in SHORTCUT.items()
            for k, (iid, ood) in enumerate(folds)]


def log_shortcut_study(client, uri: str, name: str = "shortcut") -> str:
    """A study parent run with the shortcut curves, tests and figure; returns its id."""
    from medxfer.reports.study import record_shortcut
    from medxfer.tracking import schema
    from medxfer.tracking.store import ensure_experiment

    exp = ensure_experiment(uri, schema.experiment_name("study", name))
    run = client.create_run(exp, tags={schema.KIND: schema.KIND_STUDY})
    assert record_shortcut(uri, run.info.run_id, shortcut_records(),
                           title=f"Study {name}: tag in class 1") is None
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def log_analyses(tmp: Path, uri: str, name: str = "synth") -> None:
    """One run of every ``medxfer analyze`` verb in ``analysis/<name>``."""
    import torch

    from medxfer.cli import main
    from medxfer.data.synth import synthesize
    from medxfer.models import create_backbone

    data = tmp / "analysis-data"
    synthesize(data, n_per_class=8, seed=0, modalities=["synthlesion", "synthpneumonia"])
    weights = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        weights.append(tmp / f"tiny{seed}.pt")
        torch.save(create_backbone("tiny_cnn", in_chans=1, num_classes=2).state_dict(),
                   weights[-1])
    common = ["--name", name, "--tracking-uri", uri]
    model = ["--weights", str(weights[0]), "--backbone", "tiny_cnn"]
    lesion = ["--data", str(data), "--flag", "synthlesion"]
    for verb, args in (
            ("saliency", [*model, *lesion, "--ig-steps", "4"]),
            ("domain-gap", ["--data", str(data), "--flags", "synthlesion,synthpneumonia",
                            "--permutations", "19"]),
            ("similarity", [*model, "--weights", str(weights[1]), *lesion, "--repeats", "1",
                            "--max-rows", "2000"]),
            ("spectrum", [*model, *lesion])):
        code = main(["analyze", verb, *args, *common, "--output", str(tmp / "analyses" / verb)])
        assert code == 0, verb

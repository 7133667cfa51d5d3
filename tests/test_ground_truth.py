"""Ground truth from MLflow: selection rule, both tables, --name resolution, CLI formats."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from benchmark_csvs import run_row, write_export

from medxfer.cli import main
from medxfer.tracking.benchmark_import import import_benchmark
from medxfer.tracking.query import ground_truth, selected_runs


@pytest.fixture
def store(tmp_path, tracking_uri):
    d = tmp_path / "mini"
    write_export(d / "fined_blood.csv", [
        run_row("imagenet", "bloodmnist", val_loss=0.50, test_auc=0.91),
        run_row("imagenet", "bloodmnist", val_loss=0.30, test_auc=0.88),   # selected (min)
        run_row("imagenet", "bloodmnist", val_loss=0.90, test_auc=0.97),   # selected by max
        run_row("pathmnist", "bloodmnist", val_loss=0.70, test_auc=0.80),
        run_row("pathmnist", "bloodmnist", val_loss=0.60, test_auc=0.79),  # selected
    ])
    write_export(d / "fined_derma.csv", [
        run_row("imagenet", "dermamnist", val_loss=0.40, test_auc=0.85),   # selected
        run_row("imagenet", "dermamnist", val_loss=0.45, test_auc=0.86),
        run_row("bloodmnist", "dermamnist", val_loss=0.20, test_auc=0.75),  # selected
    ])
    write_export(d / "fined_blood_imnet.csv", [
        run_row("convnext", "bloodmnist", val_loss=0.25, test_auc=0.95),   # selected
        run_row("convnext", "bloodmnist", val_loss=0.35, test_auc=0.99),
        # FAILED runs have no val_loss: never selected, even with a better test AUC.
        run_row("vgg", "bloodmnist", val_loss=None, test_auc=None, status="FAILED"),
        run_row("vgg", "bloodmnist", val_loss=0.55, test_auc=0.70),        # selected
    ])
    import_benchmark(d, name="mini", tracking_uri=tracking_uri)
    return tracking_uri


def test_dataset_table_selects_min_val_loss(store):
    gt = ground_truth(store)
    assert list(gt.index) == ["bloodmnist", "imagenet", "pathmnist"]
    assert list(gt.columns) == ["bloodmnist", "dermamnist"]
    assert gt.loc["imagenet", "bloodmnist"] == pytest.approx(0.88)
    assert gt.loc["pathmnist", "bloodmnist"] == pytest.approx(0.79)
    assert gt.loc["imagenet", "dermamnist"] == pytest.approx(0.85)
    assert gt.loc["bloodmnist", "dermamnist"] == pytest.approx(0.75)
    assert np.isnan(gt.loc["bloodmnist", "bloodmnist"])


def test_mode_and_select_by(store):
    gt = ground_truth(store, mode="max")
    assert gt.loc["imagenet", "bloodmnist"] == pytest.approx(0.97)
    gt = ground_truth(store, select_by="test_auc", metric="val_loss", mode="max")
    assert gt.loc["imagenet", "bloodmnist"] == pytest.approx(0.90)
    long = selected_runs(store)
    row = long[(long.row == "imagenet") & (long.target == "bloodmnist")].iloc[0]
    assert row.n_runs == 3 and row.select_by == pytest.approx(0.30)


def test_architecture_table_has_resnet_from_dataset_benchmark(store):
    gt = ground_truth(store, benchmark="architecture")
    assert list(gt.index) == ["convnext", "resnet", "vgg"]
    # Only targets of the architecture benchmark (dermamnist has no architecture runs).
    assert list(gt.columns) == ["bloodmnist"]
    assert gt.loc["convnext", "bloodmnist"] == pytest.approx(0.95)
    assert gt.loc["vgg", "bloodmnist"] == pytest.approx(0.70)
    assert gt.loc["resnet", "bloodmnist"] == pytest.approx(0.88)  # imagenet -> blood


def test_cli_formats(store, capsys):
    assert main(["benchmark", "ground-truth", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(df.columns) == ["source", "bloodmnist", "dermamnist"]
    assert df.set_index("source").loc["imagenet", "dermamnist"] == pytest.approx(0.85)
    assert main(["benchmark", "ground-truth", "--format", "markdown", "--percent"]) == 0
    out = capsys.readouterr().out
    assert "| imagenet | 88.00 | 85.00 |" in out
    assert main(["benchmark", "ground-truth", "--format", "latex", "--benchmark",
                 "architecture"]) == 0
    assert r"convnext & 0.9500 \\" in capsys.readouterr().out


def test_name_resolution(store, tmp_path, capsys):
    d = tmp_path / "other"
    write_export(d / "fined_x.csv", [run_row("a", "b", val_loss=0.1, test_auc=0.5)])
    import_benchmark(d, name="other", tracking_uri=store)
    assert main(["benchmark", "ground-truth"]) == 2
    err = capsys.readouterr().err
    assert "several benchmark experiments" in err and "mini" in err and "other" in err
    assert main(["benchmark", "ground-truth", "--name", "other", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("source,b\na,0.5")
    assert main(["benchmark", "ground-truth", "--name", "missing"]) == 2
    assert "not found" in capsys.readouterr().err


def test_empty_store_names_the_fix(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    assert main(["benchmark", "ground-truth", "--tracking-uri", uri]) == 2
    assert "medxfer benchmark import" in capsys.readouterr().err


def test_bad_options(store, capsys):
    assert main(["benchmark", "ground-truth", "--mode", "median"]) == 2
    assert "mode 'median'" in capsys.readouterr().err
    assert main(["benchmark", "ground-truth", "--benchmark", "species"]) == 2
    assert main(["benchmark", "ground-truth", "--format", "xml"]) == 2


def test_pattern_spans_several_experiments(store, tmp_path):
    d = tmp_path / "more"
    write_export(d / "fined_oct.csv",
                 [run_row("imagenet", "octmnist", val_loss=0.1, test_auc=0.66)])
    import_benchmark(d, name="mini2", tracking_uri=store)
    gt = ground_truth(store, "benchmark/mini*")
    assert gt.loc["imagenet", "octmnist"] == pytest.approx(0.66)
    assert gt.loc["imagenet", "bloodmnist"] == pytest.approx(0.88)
    with pytest.raises(ValueError, match="no experiment matches"):
        ground_truth(store, "benchmark/zzz*")


# --- the CSV verb answers without pandas; its text is the DataFrame renderer's, byte for byte ---

def test_cli_csv_is_render_of_the_frame(store, capsys):
    """The verb's CSV equals ``render(ground_truth(...), "csv")`` (NaN cells, both tables,
    --percent, the max mode), and it is written without importing pandas, SQLAlchemy or MLflow
    (what keeps it within a second on the full benchmark)."""
    import subprocess
    import sys

    from medxfer.reports.tables import render

    cases = [([], {}), (["--benchmark", "architecture"], {"benchmark": "architecture"}),
             (["--mode", "max"], {"mode": "max"})]
    for args, kw in cases:
        for percent in (False, True):
            argv = ["benchmark", "ground-truth", "--format", "csv", *args]
            assert main(argv + (["--percent"] if percent else [])) == 0
            frame = ground_truth(store, **kw) * (100 if percent else 1)
            assert capsys.readouterr().out == render(frame, "csv")
    code = ("import sys\nfrom medxfer.cli import main\n"
            "assert main(['benchmark', 'ground-truth', '--format', 'csv']) == 0\n"
            "print(sorted(m for m in ('pandas', 'sqlalchemy', 'mlflow', 'numpy') "
            "if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("source,bloodmnist,dermamnist\n")
    assert out.splitlines()[-1] == "[]"


def test_render_csv_rows_matches_pandas_to_csv():
    """Quoting, float precision and empty cells as pandas writes them."""
    from medxfer.reports.tables import render, render_csv_rows

    index = ["a,b", 'q"uote', "plain", "x"]
    columns = ["c1", "c 2", "c,3"]
    cells = [[0.1, 1e-05, float("nan")], [1e16, -0.0, 123456789.123456789],
             [2 / 3, 0.0001, 1.5e-300], [float("inf"), 1.0, 0.30000000000000004]]
    frame = pd.DataFrame(cells, index=pd.Index(index, name="source"), columns=columns)
    rows = [[label, *row] for label, row in zip(index, cells, strict=True)]
    assert render_csv_rows(["source", *columns], rows) == render(frame, "csv")


@pytest.mark.parametrize("benchmark", ["dataset", "architecture"])
def test_cli_csv_on_the_full_benchmark(benchmark_store, benchmark, capsys):
    """The published benchmark (28,205 runs): the verb's CSV is the frame's CSV, byte for byte."""
    from medxfer.reports.tables import render

    uri, _ = benchmark_store
    argv = ["benchmark", "ground-truth", "--benchmark", benchmark, "--format", "csv",
            "--tracking-uri", uri]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out == render(ground_truth(uri, benchmark=benchmark), "csv")
    assert len(out.splitlines()) == {"dataset": 16, "architecture": 10}[benchmark]

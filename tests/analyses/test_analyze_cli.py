"""``medxfer analyze``: every verb writes its files and one run to a real sqlite MLflow store;
bad input exits 2 and writes neither."""

from __future__ import annotations

import csv

import pytest

from medxfer.cli import main

NAME = "t"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from medxfer.tracking.store import ensure_experiment

    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlruns.db'}"
    ensure_experiment(uri, f"analysis/{NAME}")  # create the store once (RAY-MLFLOW-NOTES)
    return uri


@pytest.fixture(scope="module")
def trained_run(store, lesion_weights):
    """A run laid out as `medxfer train` logs one: param backbone, checkpoint/model.pt."""
    from mlflow import MlflowClient

    from medxfer.tracking.store import ensure_experiment

    client = MlflowClient(tracking_uri=store)
    run = client.create_run(ensure_experiment(store, "sweep/src"))
    client.log_param(run.info.run_id, "backbone", "tiny_cnn")
    model_pt = lesion_weights[0].parent / "model.pt"
    model_pt.write_bytes(lesion_weights[0].read_bytes())
    client.log_artifact(run.info.run_id, str(model_pt), artifact_path="checkpoint")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _runs(uri, analysis=None):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(f"analysis/{NAME}")
    runs = client.search_runs([exp.experiment_id]) if exp else []
    return [r for r in runs if analysis is None or r.data.tags["medxfer.analysis"] == analysis]


def _only_run(uri, analysis):
    runs = _runs(uri, analysis)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["medxfer.kind"] == "analysis"
    return run


def _artifacts(uri, run):
    from mlflow import MlflowClient

    return sorted(f.path for f in MlflowClient(tracking_uri=uri).list_artifacts(run.info.run_id))


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_saliency_from_a_run(store, trained_run, lesion_root, tmp_path, capsys):
    out = tmp_path / "sal"
    rc = main(["analyze", "saliency", "--model", f"runs:/{trained_run}", "--data",
               str(lesion_root), "--flag", "synthlesion", "--boxes",
               str(lesion_root / "synthlesion_boxes.csv"), "--ig-steps", "8", "--name", NAME,
               "--output", str(out), "--tracking-uri", store])
    assert rc == 0, capsys.readouterr().err
    run = _only_run(store, "saliency")
    m, p = run.data.metrics, run.data.params
    assert p["model"] == f"runs:/{trained_run}" and p["backbone"] == "tiny_cnn"
    assert p["regions"].endswith("synthlesion_boxes.csv") and p["gradcam_layer"] == \
        "backbone.features"
    assert 0 < m["chance"] < 0.2 and m["hit_rate_gradcam"] >= 2 * m["chance"]
    assert _artifacts(store, run) == sorted(["hit_rate.csv", "saliency_hits.csv",
                                             "saliency_maps.npz", "saliency_grid.png"])
    table = {r["method"]: r for r in _rows(out / "hit_rate.csv")}
    assert float(table["gradcam"]["hit_rate"]) == pytest.approx(m["hit_rate_gradcam"])
    assert int(table["ig"]["n_images"]) == m["n_images"] == 20  # the test split's lesions
    assert (out / "saliency_grid.png").stat().st_size > 1000


def test_domain_gap(store, lesion_root, tmp_path):
    out = tmp_path / "dg"
    rc = main(["analyze", "domain-gap", "--data", str(lesion_root), "--flags",
               "synthlesion,synthpneumonia", "--permutations", "99", "--name", NAME,
               "--output", str(out), "--tracking-uri", store])
    assert rc == 0
    run = _only_run(store, "domain-gap")
    assert run.data.metrics["p_value/synthlesion/synthpneumonia"] <= 0.01  # 1 / (1 + 99)
    assert run.data.metrics["mmd2/synthlesion/synthpneumonia"] > 0.05
    rows = _rows(out / "mmd.csv")
    assert len(rows) == 1 and float(rows[0]["p_value"]) <= 0.01
    assert len(_rows(out / "domain_features.csv")) == 40 + 40  # two test splits of 20 x 2
    assert "domain_gap_mds.png" in _artifacts(store, run)


def test_similarity_of_a_model_with_itself(store, lesion_root, lesion_weights, tmp_path):
    out = tmp_path / "sim"
    w = str(lesion_weights[0])
    rc = main(["analyze", "similarity", "--weights", w, "--weights", w, "--backbone", "tiny_cnn",
               "--data", str(lesion_root), "--flag", "synthlesion", "--n-images", "30",
               "--max-rows", "4000", "--repeats", "2",
               "--name", NAME, "--output", str(out), "--tracking-uri", store])
    assert rc == 0
    run = _only_run(store, "similarity")
    m = run.data.metrics
    assert m["prediction_similarity"] == 1.0 and m["acc_a"] == m["acc_b"]
    assert m["independent_similarity"] == pytest.approx(m["acc_a"] ** 2 + (1 - m["acc_a"]) ** 2)
    layers = [k for k in m if k.startswith("cca/")]
    assert layers == ["cca/features.0", "cca/features.3", "cca/features.6"]
    assert all(m[k] == pytest.approx(1.0, abs=1e-6) for k in layers)
    assert [r["layer"] for r in _rows(out / "cca.csv")] == ["features.0", "features.3",
                                                            "features.6"]


def test_similarity_of_two_models_is_below_one(lesion_root, lesion_weights, tmp_path):
    from medxfer.analyses.inputs import ModelRef, load_images
    from medxfer.analyses.similarity import run_similarity

    refs = [ModelRef(str(w), "tiny_cnn", w) for w in lesion_weights]
    images = load_images(lesion_root, "synthlesion", "test")
    res = run_similarity(*refs, images, tmp_path, repeats=2, max_rows=4000)
    assert 0.2 < res.metrics["cca/features.6"] < 0.99
    assert 0 <= res.metrics["prediction_similarity"] <= 1


def test_spectrum_of_images_and_gradients(store, lesion_root, lesion_weights, tmp_path):
    out = tmp_path / "psd"
    rc = main(["analyze", "spectrum", "--weights", str(lesion_weights[0]), "--backbone",
               "tiny_cnn", "--data", str(lesion_root), "--flag", "synthlesion", "--name", NAME,
               "--output", str(out), "--tracking-uri", store])
    assert rc == 0
    run = _only_run(store, "spectrum")
    m = run.data.metrics
    assert 0 < m["peak_frequency_images"] <= 1 and 0 < m["peak_frequency_gradients"] <= 1
    # the images are smooth, the input gradients of a CNN are not: more high-frequency share
    assert m["centroid_frequency_gradients"] > m["centroid_frequency_images"]
    rows = _rows(out / "psd.csv")
    assert len(rows) == 14 and set(rows[0]) == {"k", "frequency", "psd_images", "psd_gradients"}


@pytest.mark.parametrize("args, message", [
    (["saliency", "--weights", "{w}", "--data", "{d}", "--flag", "synthlesion"],
     "--weights needs --backbone"),
    (["saliency", "--weights", "{w}", "--backbone", "tiny_cnn", "--data", "{d}", "--flag",
      "synthlesion", "--target-class", "5"], "outside the model's 2 classes"),
    (["saliency", "--weights", "{w}", "--backbone", "tiny_cnn", "--data", "{d}", "--flag",
      "synthlesion", "--boxes", "{d}/none.csv"], "boxes CSV not found"),
    (["saliency", "--model", "runs:/nope", "--data", "{d}", "--flag", "synthlesion"],
     "no MLflow run 'nope'"),
    (["saliency", "--weights", "{w}", "--backbone", "tiny_cnn", "--data", "{d}", "--flag",
      "synthlesion", "--methods", "lime"], "unknown saliency method"),
    (["domain-gap", "--data", "{d}", "--flags", "synthlesion,nope"], "nope"),
    (["domain-gap", "--data", "{d}", "--flags", "synthlesion"], "at least two datasets"),
    (["domain-gap", "--data", "{d}", "--flags", "synthlesion,synthpneumonia", "--name", "a/b"],
     "without '/'"),
    (["similarity", "--weights", "{w}", "--backbone", "tiny_cnn", "--data", "{d}", "--flag",
      "synthlesion"], "compares two models"),
    (["similarity", "--weights", "{w}", "--weights", "{w}", "--backbone", "tiny_cnn", "--data",
      "{d}", "--flag", "synthlesion", "--layers", "nope"], "not in both models"),
    (["spectrum", "--data", "{d}/missing", "--flag", "synthlesion"], "data folder not found"),
    (["spectrum", "--weights", "{d}/none.pt", "--backbone", "tiny_cnn", "--data", "{d}",
      "--flag", "synthlesion"], "weight file not found"),
    (["spectrum", "--data", "{d}", "--flag", "synthlesion", "--split", "dev"], "split 'dev'"),
])
def test_bad_input_exits_2_and_writes_nothing(store, lesion_root, lesion_weights, tmp_path,
                                              capsys, args, message):
    before = len(_runs(store))
    out = tmp_path / "out"
    argv = [a.format(w=lesion_weights[0], d=lesion_root) for a in args]
    if "--name" not in argv:
        argv += ["--name", NAME]
    rc = main(["analyze", *argv, "--output", str(out), "--tracking-uri", store])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert len(_runs(store)) == before and not out.exists()
    assert not list(tmp_path.glob(".out.tmp-*"))

"""Bad input on every verb: exit 2, one message naming the key or option and the path, no
traceback, and nothing written (no store file, no run, no output) — issue 15, item 1.

Each case runs ``medxfer`` in-process from an empty working directory; afterwards that directory
must still be empty (so no default ``mlruns.db``, ``ray_results`` or output appeared) and the
shared benchmark store must hold the same runs. A few cases also run in a subprocess to check
that the driver stops before Ray or MLflow is even imported.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import dataclass

import pytest
import yaml

from medxfer.cli import main

TRAIN = {"method": "finetune", "data": {"root": "{data}", "flag": "synthpneumonia",
                                         "source": "scratch", "n_train_per_class": 5,
                                         "n_val_per_class": 5},
         "model": {"backbone": "tiny_cnn"}, "train": {"epochs": 1}}
SEARCH = {"algorithm": "hyperopt", "num_samples": 2,
          "space": {"train.lr": {"loguniform": [1.0e-3, 1.0e-1]}}}


def _variant(base: dict, **changes) -> dict:
    """``base`` with dotted keys set (``None`` removes the key)."""
    import copy

    out = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return out


#: name -> experiment YAML (``{data}``, ``{w}`` filled in by the fixture).
YAMLS = {
    "root": _variant(TRAIN, data__root="{data}/nowhere"),
    "flag": _variant(TRAIN, data__flag="synthnope"),
    "backbone": _variant(TRAIN, model__backbone="resnet_nope"),
    "weights": _variant(TRAIN, model__weights="{w}/missing.pt"),
    "garbage": _variant(TRAIN, model__weights="{w}/garbage.pt"),
    "method": _variant(TRAIN, method="finetuned"),
    "chans": _variant(TRAIN, model__in_chans=3),
    "transform": _variant(TRAIN, data__transforms=[{"name": "no_such_transform"}]),
    "yaml_uri": _variant(TRAIN, tracking={"uri": "mongodb://db/x"}),
    "typo": _variant(TRAIN, trian={"lr": 0.1}),
    "nan_lr": _variant(TRAIN, train__lr=float("nan")),
    "ok": TRAIN,
    "sw_root": _variant(TRAIN, data__root="{data}/nowhere", search=SEARCH),
    "sw_flag": _variant(TRAIN, data__flag="synthnope", search=SEARCH),
    "sw_searcher": _variant(TRAIN, search={**SEARCH, "algorithm": "tpe"}),
    "sw_empty": _variant(TRAIN, search={"algorithm": "random", "num_samples": 2}),
    "sw_space_backbone": _variant(TRAIN, search={**SEARCH, "space": {
        **SEARCH["space"], "model.backbone": {"choice": ["tiny_cnn", "tiny_cnnn"]}}}),
    "sw_none": TRAIN,
    "sw_ok": _variant(TRAIN, search=SEARCH),
    "sw_zero": _variant(TRAIN, search={**SEARCH, "num_samples": 0}),
}
STUDY = {**TRAIN, "protocol": {"cv": {"folds": 2}, "seeds": [0], "test_sets": {
    "h1": {"root": "{data}", "flag": "synthpneumonia_h1", "split": "1:1"}}}}
#: name -> study YAML (``{data}``, ``{w}`` filled in by the fixture).
STUDIES = {
    "st_root": _variant(STUDY, data__root="{data}/nowhere"),
    "st_test_set": _variant(STUDY, protocol__test_sets__h1__flag="synthpneumonia_h9"),
    "st_row_weights": {**STUDY, "methods": ["finetune", {
        "name": "pretrained", "model": {"weights": "{w}/missing.pt"}}]},
    "st_manifest": _variant(STUDY, data={"manifest": "{data}/none.csv", "source": "scratch"}),
    "st_backbone": _variant(STUDY, model__backbone="resnet_nope"),
    "st_folds": _variant(STUDY, protocol__cv__folds=50),
    "st_method": _variant(STUDY, method="finetuned"),
    "st_ok": STUDY,
    # declared data (synthesize:) is written only after the rows and protocol validate
    "st_synth_metric": {**_variant(STUDY, protocol__metric="dice_score"), "synthesize": {
        "out": "synth_out", "modalities": ["synthpneumonia"], "n_per_class": 6}},
}
ZOO = ("- name: synthderm\n  architecture: {arch}\n  weights: {w}/{file}\n"
       "  num_classes: {n}\n  normalization: half\n")
ZOOS = {
    "ok": dict(arch="tiny_cnn", file="c4.pt", n=4),
    "head": dict(arch="tiny_cnn", file="c4.pt", n=7),
    "headless": dict(arch="tiny_cnn", file="headless.pt", n=4),
    "arch": dict(arch="tiny_cnnx", file="c4.pt", n=4),
    "zweights": dict(arch="tiny_cnn", file="missing.pt", n=4),
}


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]  # all in the message's first line


def _c(id_: str, argv: str, *expect: str) -> Case:
    return Case(id_, tuple(argv.split()), expect)


NEW = "--tracking-uri {new}"  # a store in the (empty) working directory: must stay absent
CASES = [
    # train
    _c("train-no-yaml", f"train {{tmp}}/none.yaml {NEW}", "{tmp}/none.yaml", "cannot read"),
    _c("train-root", f"train {{y}}/root.yaml {NEW}", "root.yaml: data.root: no such folder",
       "{data}/nowhere"),
    _c("train-set-root", f"train {{y}}/ok.yaml --set data.root={{tmp}}/gone {NEW}",
       "--set data.root: no such folder {tmp}/gone"),
    _c("train-flag", f"train {{y}}/flag.yaml {NEW}", "flag.yaml: data.flag: no synthnope.npz",
       "{data}"),
    _c("train-backbone", f"train {{y}}/backbone.yaml {NEW}",
       "backbone.yaml: model.backbone: unknown backbone 'resnet_nope'"),
    _c("train-weights", f"train {{y}}/weights.yaml {NEW}", "model.weights: no such file",
       "{w}/missing.pt"),
    _c("train-weights-garbage", f"train {{y}}/garbage.yaml {NEW}", "model.weights: cannot read",
       "{w}/garbage.pt"),
    _c("train-method", f"train {{y}}/method.yaml {NEW}", "method.yaml: method: unknown method "
       "'finetuned'; valid:"),
    _c("train-in-chans", f"train {{y}}/chans.yaml {NEW}", "model.in_chans: is 3 but "
       "synthpneumonia images have 1 channel"),
    _c("train-transform", f"train {{y}}/transform.yaml {NEW}", "data.transforms: ",
       "no_such_transform"),
    _c("train-yaml-uri", "train {y}/yaml_uri.yaml",
       "yaml_uri.yaml: tracking.uri: 'mongodb://db/x': unknown scheme 'mongodb'"),
    _c("train-cli-uri", "train {y}/ok.yaml --tracking-uri foo://bar",
       "--tracking-uri: 'foo://bar': unknown scheme 'foo'"),
    _c("train-dead-server", "train {y}/ok.yaml --tracking-uri http://127.0.0.1:{port}",
       "--tracking-uri: no MLflow tracking server answers at http://127.0.0.1:{port}"),
    _c("train-typo", f"train {{y}}/typo.yaml {NEW}", "typo.yaml: trian: unknown field"),
    _c("train-nan-lr", f"train {{y}}/nan_lr.yaml {NEW}", "nan_lr.yaml: train.lr: must be > 0"),
    _c("train-broken-yaml", f"train {{x}}/broken.yaml {NEW}", "broken.yaml, line 3: not valid "
       "YAML"),
    # sweep
    _c("sweep-root", f"sweep {{y}}/sw_root.yaml {NEW}", "sw_root.yaml: data.root: no such "
       "folder {data}/nowhere"),
    _c("sweep-flag", f"sweep {{y}}/sw_flag.yaml {NEW}", "sw_flag.yaml: data.flag: no "
       "synthnope.npz"),
    _c("sweep-searcher", f"sweep {{y}}/sw_searcher.yaml {NEW}",
       "search.algorithm: unknown searcher 'tpe'"),
    _c("sweep-empty-space", f"sweep {{y}}/sw_empty.yaml {NEW}", "search.space: is empty"),
    _c("sweep-searched-backbone", f"sweep {{y}}/sw_space_backbone.yaml {NEW}",
       "search.space.model.backbone (value 'tiny_cnnn'): unknown backbone"),
    _c("sweep-no-search", f"sweep {{y}}/sw_none.yaml {NEW}", "search: a sweep needs a search"),
    _c("sweep-dead-server", "sweep {y}/sw_ok.yaml --tracking-uri http://127.0.0.1:{port}",
       "no MLflow tracking server answers at http://127.0.0.1:{port}"),
    _c("sweep-num-samples-0", f"sweep {{y}}/sw_zero.yaml {NEW}",
       "sw_zero.yaml: search.num_samples: "),
    _c("sweep-resume-none", f"sweep {{y}}/sw_ok.yaml --resume {NEW}",
       "--resume: no sweep 'sw_ok*' under {tmp}/ray_results; pass --name"),
    _c("sweep-env-uri", "sweep {y}/sw_ok.yaml", "$MLFLOW_TRACKING_URI: 'bogus://x': unknown "
       "scheme"),
    # study
    _c("study-root", f"study {{y}}/st_root.yaml {NEW}", "st_root.yaml: ", "data.root: no such "
       "folder {data}/nowhere"),
    _c("study-test-set-flag", f"study {{y}}/st_test_set.yaml {NEW}",
       "st_test_set.yaml: protocol.test_sets.h1.flag: no synthpneumonia_h9.npz"),
    _c("study-row-weights", f"study {{y}}/st_row_weights.yaml {NEW}",
       "methods[1].model.weights: no such file: {w}/missing.pt"),
    _c("study-manifest", f"study {{y}}/st_manifest.yaml {NEW}",
       "data.manifest: no such file: {data}/none.csv"),
    _c("study-backbone", f"study {{y}}/st_backbone.yaml {NEW}",
       "model.backbone: unknown backbone 'resnet_nope'"),
    _c("study-folds", f"study {{y}}/st_folds.yaml {NEW}", "st_folds.yaml: protocol.cv.folds: "
       "50 folds"),
    _c("study-method", f"study {{y}}/st_method.yaml {NEW}", "method: unknown method "
       "'finetuned'"),
    _c("study-synth-metric", f"study {{y}}/st_synth_metric.yaml {NEW}",
       "st_synth_metric.yaml: invalid experiment config"),
    _c("study-dead-server", "study {y}/st_ok.yaml --tracking-uri http://127.0.0.1:{port}",
       "--tracking-uri: no MLflow tracking server answers at http://127.0.0.1:{port}"),
    _c("study-resume-none", f"study {{y}}/st_ok.yaml --resume {NEW}", "--resume"),
    # estimate score
    _c("score-no-zoo", f"estimate score {{tmp}}/zoo.yaml --target {{data}} --flag synthorgan "
       f"{NEW}", "{tmp}/zoo.yaml", "zoo file not found"),
    _c("score-target", f"estimate score {{z}}/ok.yaml --target {{tmp}}/t --flag synthorgan {NEW}",
       "--target: no such folder: {tmp}/t"),
    _c("score-flag", f"estimate score {{z}}/ok.yaml --target {{data}} --flag synthnope {NEW}",
       "--flag: file not found", "{data}/synthnope.npz"),
    _c("score-multilabel", f"estimate score {{z}}/ok.yaml --target {{data}} --flag synthchest "
       f"{NEW}", "--flag: target 'synthchest' is multi-label"),
    _c("score-head", f"estimate score {{z}}/head.yaml --target {{data}} --flag synthorgan "
       f"--metrics leep {NEW}", "head.yaml, field '[0].num_classes':",
       "{w}/c4.pt holds a 4-class classifier, not num_classes = 7"),
    _c("score-headless", f"estimate score {{z}}/headless.yaml --target {{data}} --flag "
       f"synthorgan {NEW}", "field '[0].num_classes'", "headless.pt holds no classifier"),
    _c("score-metric", f"estimate score {{z}}/ok.yaml --target {{data}} --flag synthorgan "
       f"--metrics leep,lepe {NEW}", "--metrics: unknown metric(s) lepe"),
    _c("score-arch", f"estimate score {{z}}/arch.yaml --target {{data}} --flag synthorgan {NEW}",
       "field '[0].architecture'", "tiny_cnnx"),
    _c("score-weights", f"estimate score {{z}}/zweights.yaml --target {{data}} --flag "
       f"synthorgan {NEW}", "field '[0].weights'", "{w}/missing.pt"),
    _c("score-uri", "estimate score {z}/ok.yaml --target {data} --flag synthorgan "
       "--tracking-uri ftp://x", "--tracking-uri: 'ftp://x': unknown scheme 'ftp'"),
    _c("score-dead-server", "estimate score {z}/ok.yaml --target {data} --flag synthorgan "
       "--tracking-uri http://127.0.0.1:{port}", "--tracking-uri: no MLflow tracking server"),
    # estimate evaluate
    _c("evaluate-format-vs-output", "estimate evaluate --scores {bench}/scores --ground-truth "
       "mini --tracking-uri {store} --output {tmp}/tau.csv --format table",
       "--format table contradicts --output {tmp}/tau.csv"),
    _c("evaluate-scores-dir", "estimate evaluate --scores {tmp}/noscores/ --ground-truth mini "
       "--tracking-uri {store}", "{tmp}/noscores/: expected a directory of <metric>_*.csv"),
    _c("evaluate-missing-store", f"estimate evaluate --scores synth --ground-truth mini {NEW}",
       "--tracking-uri: no MLflow store at {tmp}/mlruns.db"),
    _c("evaluate-gt-csv", "estimate evaluate --scores {bench}/scores --ground-truth {tmp}/gt.csv",
       "{tmp}/gt.csv", "ground-truth CSV not found"),
    _c("evaluate-gt-name", "estimate evaluate --scores {bench}/scores --ground-truth nosuch "
       "--tracking-uri {store}", "--ground-truth: experiment 'benchmark/nosuch' not found"),
    # benchmark
    _c("import-missing-dir", f"benchmark import {{tmp}}/exports {NEW}", "{tmp}/exports"),
    _c("import-no-csv", f"benchmark import {{w}} {NEW}", "{w}", "fined_"),
    _c("import-bad-columns", f"benchmark import {{x}}/mini_bad {NEW}",
       "{x}/mini_bad/fined_bloodmnist.csv, line 1: missing required column(s)"),
    _c("import-dead-server", "benchmark import {bench}/mini --tracking-uri "
       "http://127.0.0.1:{port}", "--tracking-uri: no MLflow tracking server answers"),
    _c("ground-truth-missing-store", f"benchmark ground-truth {NEW}",
       "--tracking-uri: no MLflow store at {tmp}/mlruns.db"),
    _c("ground-truth-default-store", "benchmark ground-truth",
       "the default store: no MLflow store at {tmp}/mlruns.db"),
    _c("ground-truth-metric", "benchmark ground-truth --metric test_aucc --tracking-uri {store}",
       "--metric 'test_aucc': no run of benchmark/mini"),
    _c("ground-truth-dead-server", "benchmark ground-truth --tracking-uri http://127.0.0.1:{port}",
       "no MLflow tracking server answers at"),
    _c("replay-searcher", "benchmark replay --searcher nope --tracking-uri {store}",
       "unknown searcher 'nope'"),
    _c("replay-budget-0", "benchmark replay --searcher grid --budget 0 --tracking-uri {store}",
       "--budget: budget must be >= 1"),
    _c("replay-missing-store", f"benchmark replay --searcher grid {NEW}",
       "no MLflow store at {tmp}/mlruns.db"),
    # report
    _c("report-missing-store", f"report --output {{tmp}}/rep {NEW}",
       "--tracking-uri: no MLflow store at {tmp}/mlruns.db"),
    _c("report-name", "report --name nosuch --output {tmp}/rep --tracking-uri {store}",
       "--name: experiment 'benchmark/nosuch' not found"),
    _c("report-mode", "report --mode best --output {tmp}/rep --tracking-uri {store}",
       "--mode 'best': expected min or max"),
    _c("report-sweep", "report --sweep nosuch --output {tmp}/rep --tracking-uri {store}",
       "--sweep: sweep experiment(s) sweep/nosuch not found"),
    # ui
    _c("ui-missing-store", f"ui {NEW}", "no MLflow store at {tmp}/mlruns.db"),
    _c("ui-scheme", "ui --tracking-uri foo://bar", "unknown scheme 'foo'"),
    # data
    _c("synth-no-out", "data synth", "--out DIR is required"),
    _c("synth-modality", "data synth --out {tmp}/s --modalities synthnope", "synthnope"),
    _c("synth-size", "data synth --out {tmp}/s --size 30", "30"),
    _c("check-manifest", "data check {tmp}/m.csv", "{tmp}/m.csv"),
    _c("check-columns", "data check {x}/bad_cols.csv", "bad_cols.csv, field 'path': no 'path' "
       "column"),
    _c("check-corrupt-image", "data check {x}/corrupt.csv", "corrupt.csv: 1 missing or "
       "unreadable image"),
    _c("synth-n-per-class", "data synth --out {tmp}/s --n-per-class 0", "n_per_class"),
    _c("energy-ref-root", "data energy-reference --out {tmp}/e.json --root {tmp}/r --flag x",
       "--root: no such folder {tmp}/r"),
    _c("energy-ref-neither", "data energy-reference --out {tmp}/e.json",
       "give either --root and --flag, or --manifest"),
    _c("remove-text-input", "data remove-text {tmp}/none {tmp}/o",
       "{tmp}/none"),
    # analyze
    _c("domain-gap-data", f"analyze domain-gap --data {{tmp}}/d --flags a,b {NEW}", "{tmp}/d"),
    _c("domain-gap-flag", f"analyze domain-gap --data {{data}} --flags synthnope {NEW}",
       "synthnope"),
    _c("saliency-run-missing-store", f"analyze saliency --model runs:/abc --data {{data}} "
       f"--flag synthlesion {NEW}", "no MLflow store at {tmp}/mlruns.db"),
    _c("similarity-one-model", "analyze similarity --model runs:/abc --data {data} --flag "
       "synthpneumonia --tracking-uri {store}", "--model", "similarity compares two models"),
    # demo
    _c("demo-scheme", "demo --out {tmp}/demo --tracking-uri foo://bar",
       "--tracking-uri: 'foo://bar': unknown scheme 'foo'"),
    _c("spectrum-weights", f"analyze spectrum --data {{data}} --flag synthpneumonia --weights "
       f"{{w}}/missing.pt --backbone tiny_cnn {NEW}", "{w}/missing.pt"),
]


def _fill(text: str, env: dict) -> str:
    return text.format(**env)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: connecting is refused at once


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Synthetic data, weight files, experiment and zoo YAMLs, and a small benchmark store."""
    import torch

    from benchmark_csvs import run_row, write_export
    from medxfer.data import synthesize
    from medxfer.data.synth_studies import synthesize_hospitals
    from medxfer.models import create_backbone

    root = tmp_path_factory.mktemp("bad_inputs")
    data, w, y, z = root / "data", root / "weights", root / "yaml", root / "zoo"
    synthesize(data, size=28, n_per_class=6, seed=0,
               modalities=["synthpneumonia", "synthorgan", "synthchest", "synthlesion"])
    synthesize_hospitals(data, "synthpneumonia", hospitals=1, n_per_class=6)
    for d in (w, y, z):
        d.mkdir()
    torch.manual_seed(0)
    torch.save(create_backbone("tiny_cnn", in_chans=3, num_classes=4).state_dict(), w / "c4.pt")
    torch.save(create_backbone("tiny_cnn", in_chans=3).state_dict(), w / "headless.pt")
    (w / "garbage.pt").write_text("not a torch file")
    env = {"data": str(data), "w": str(w)}
    for name, doc in {**YAMLS, **STUDIES}.items():
        (y / f"{name}.yaml").write_text(_fill(yaml.safe_dump(doc), env))
    for name, fields in ZOOS.items():
        (z / f"{name}.yaml").write_text(ZOO.format(w=w, **fields))
    x = root / "extra"
    (x / "mini_bad").mkdir(parents=True)
    (x / "mini_bad" / "fined_bloodmnist.csv").write_text("source,foo\nimagenet,1\n")
    (x / "bad_cols.csv").write_text("file,label\na.png,0\n")
    from PIL import Image

    Image.new("L", (28, 28), 128).save(x / "ok.png")
    (x / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (x / "corrupt.csv").write_text("path,label,patient_id\nok.png,0,p1\ncorrupt.png,1,p2\n")
    (x / "broken.yaml").write_text("method: finetune\ndata: {root: x\n")
    bench = root / "bench"
    for t in ("bloodmnist", "dermamnist"):
        write_export(bench / "mini" / f"fined_{t}.csv",
                     [run_row(s, t, val_loss=0.1 * (i + 1), test_auc=0.7 + 0.05 * i)
                      for i, s in enumerate(["imagenet", "pathmnist", "octmnist"])])
    (bench / "scores").mkdir()
    (bench / "scores" / "logme_scores.csv").write_text(
        "source,bloodmnist,dermamnist\nimagenet,1,2\npathmnist,2,1\noctmnist,3,0\n")
    store = f"sqlite:///{bench / 'mlruns.db'}"
    assert main(["benchmark", "import", str(bench / "mini"), "--tracking-uri", store]) == 0
    return {**env, "x": str(x), "y": str(y), "z": str(z), "bench": str(bench), "store": store,
            "port": str(_free_port())}


def _store_rows(store: str) -> tuple[int, int]:
    with sqlite3.connect(store[len("sqlite:///"):]) as db:
        return (db.execute("select count(*) from runs").fetchone()[0],
                db.execute("select count(*) from experiments").fetchone()[0])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_and_writes_nothing(case, world, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if case.id == "sweep-env-uri":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus://x")
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    env = {**world, "tmp": str(tmp_path), "new": f"sqlite:///{tmp_path / 'mlruns.db'}"}
    before = _store_rows(world["store"])
    capsys.readouterr()
    assert main([_fill(a, env) for a in case.argv]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: "), err
    first = err.splitlines()[0]
    for text in case.expect:
        assert _fill(text, env) in first, first
    assert "Traceback" not in out + err
    assert list(tmp_path.iterdir()) == []  # no store file, no ray_results, no output
    assert _store_rows(world["store"]) == before  # no run or experiment in the shared store


@pytest.mark.parametrize("verb, name", [("train", "root"), ("sweep", "sw_root"),
                                        ("train", "weights"), ("sweep", "sw_flag")])
def test_the_driver_stops_before_torch_ray_or_mlflow_is_imported(world, tmp_path, verb, name):
    """The common mistakes are found by the first pass (stat calls), in a fresh process."""
    code = ("import sys; from medxfer.cli import main; rc = main(sys.argv[1:]); "
            "print(rc, sorted(m for m in ('torch', 'ray', 'mlflow') if m in sys.modules))")
    argv = [verb, f"{world['y']}/{name}.yaml", "--tracking-uri",
            f"sqlite:///{tmp_path / 'mlruns.db'}"]
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.stdout.strip() == "2 []", proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_cases_cover_every_verb():
    import typer

    from medxfer.cli import app

    verbs, stack = set(), [((), typer.main.get_command(app))]
    while stack:
        path, cmd = stack.pop()
        if hasattr(cmd, "commands"):
            stack.extend((path + (n,), c) for n, c in cmd.commands.items())
        else:
            verbs.add(path)
    covered = {c.argv[:len(v)] for c in CASES for v in verbs if c.argv[:len(v)] == v}
    assert verbs == covered, verbs - covered
    assert len(CASES) >= 40

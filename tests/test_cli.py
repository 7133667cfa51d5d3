"""The CLI shell: fast to start, every verb documented with an example."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from medxfer.cli import app, main


def test_import_does_not_pull_heavy_libraries():
    code = ("import sys, medxfer.cli; "
            "print(','.join(m for m in ('torch', 'mlflow', 'ray', 'sklearn', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


def _verbs():
    root = typer.main.get_command(app)
    stack = [((), root)]
    while stack:
        path, cmd = stack.pop()
        if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
            stack.extend((path + (n,), c) for n, c in cmd.commands.items())
        else:
            yield path


@pytest.mark.parametrize("verb", sorted(_verbs()), ids=" ".join)
def test_every_verb_has_help_with_an_example(verb, capsys):
    assert main([*verb, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Example" in out and "medxfer " in out.split("Example", 1)[1]


def test_unknown_verb_is_a_usage_error(capsys):
    assert main(["no-such-verb"]) == 2
    assert "No such command" in capsys.readouterr().err


def _params(verb):
    root = typer.main.get_command(app)
    cmd = root
    for name in verb:
        cmd = cmd.commands[name]
    return {opt: p for p in cmd.params for opt in p.opts}


def test_every_verb_with_format_takes_its_format_from_output():
    """One rule for every table-writing verb: no --format default, so the extension decides."""
    verbs = [v for v in _verbs() if "--format" in _params(v)]
    assert sorted(verbs) == [("benchmark", "ground-truth"), ("benchmark", "replay"),
                             ("estimate", "evaluate"), ("estimate", "score")]
    for verb in verbs:
        params = _params(verb)
        assert "--output" in params, verb
        assert params["--format"].default is None, verb


# --- a small benchmark store shared by the error-message and output tests ------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(uri, folder): benchmark/mini of 3 sources x 2 targets, imported through the CLI."""
    from benchmark_csvs import run_row, write_export

    tmp = tmp_path_factory.mktemp("cli_store")
    rows = {t: [run_row(s, t, val_loss=0.1 * (i + 1), test_auc=0.7 + 0.05 * i)
                for i, s in enumerate(["imagenet", "pathmnist", "octmnist"])]
            for t in ("bloodmnist", "dermamnist")}
    for t, r in rows.items():
        write_export(tmp / "mini" / f"fined_{t}.csv", r)
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    scores = tmp / "scores"
    scores.mkdir()
    (scores / "logme_scores.csv").write_text(
        "source,bloodmnist,dermamnist\nimagenet,1,2\npathmnist,2,1\noctmnist,3,0\n")
    return uri, tmp


def _imported(store):
    """``store`` with benchmark/mini in it (the import test below may have run first)."""
    uri, tmp = store
    if not (tmp / "mlruns.db").exists():
        assert main(["benchmark", "import", str(tmp / "mini"), "--tracking-uri", uri]) == 0
    return uri, tmp


def test_import_into_a_new_store_prints_no_mlflow_chatter(store, capfd):
    """MLflow's 'Creating initial MLflow database tables' INFO lines are hidden (medxfer.quiet);
    the verb's own summary still shows."""
    uri, tmp = store
    assert main(["benchmark", "import", str(tmp / "mini"), "--tracking-uri", uri]) == 0
    out, err = capfd.readouterr()
    assert "benchmark/mini: 6 runs in 2 files; 6 written" in out
    assert "database tables" not in err and "INFO" not in err


@pytest.mark.parametrize("args, message", [
    (["benchmark", "ground-truth", "--metric", "test_aucc"],
     "--metric 'test_aucc': no run of benchmark/mini's dataset table logs this metric "
     "(e.g. 'val_loss' is logged)"),
    (["benchmark", "ground-truth", "--select-by", "val_los"],
     "--select-by 'val_los': no run of benchmark/mini's dataset table logs this metric"),
    (["benchmark", "ground-truth", "--name", "nosuch"],
     "--name: experiment 'benchmark/nosuch' not found in"),
    (["benchmark", "ground-truth", "--benchmark", "arch"],
     "--benchmark 'arch': expected one of dataset, architecture"),
    (["benchmark", "ground-truth", "--mode", "best"], "--mode: mode 'best': expected one of min"),
    (["benchmark", "ground-truth", "--output", "{tmp}/gt.csv", "--format", "latex"],
     "--format latex contradicts --output {tmp}/gt.csv (.csv means csv); drop --format or "
     "write to gt.tex"),
    (["benchmark", "replay", "--searcher", "grid", "--output", "{tmp}/r.md", "--format", "csv"],
     "--format csv contradicts --output {tmp}/r.md (.md means markdown)"),
    (["estimate", "evaluate", "--scores", "{store}/scores", "--ground-truth", "nosuch"],
     "--ground-truth: experiment 'benchmark/nosuch' not found in"),
    (["report", "--name", "nosuch", "--output", "{tmp}/rep"],
     "--name: experiment 'benchmark/nosuch' not found in"),
])
def test_errors_name_the_option_the_user_wrote(store, tmp_path, capsys, args, message):
    """Exit 2, the option as written (not the reader's `field 'name'`), nothing written."""
    uri, folder = _imported(store)
    capsys.readouterr()
    args = [a.format(tmp=tmp_path, store=folder) for a in args]
    assert main([*args, "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + message.format(tmp=tmp_path)), err
    assert "field '" not in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_ground_truth_output_extension_sets_the_format(store, tmp_path, capsys):
    import pandas as pd

    from medxfer.tracking.query import ground_truth

    uri, _ = _imported(store)
    for name in ("gt.csv", "gt.md", "gt.tex", "gt"):
        assert main(["benchmark", "ground-truth", "--output", str(tmp_path / name),
                     "--tracking-uri", uri]) == 0
    got = pd.read_csv(tmp_path / "gt.csv", index_col="source")
    pd.testing.assert_frame_equal(got, ground_truth(uri, "mini"), check_names=False)
    assert (tmp_path / "gt.md").read_text().startswith("| source | bloodmnist | dermamnist |")
    assert (tmp_path / "gt.tex").read_text().startswith("\\begin{tabular}{lrr}")
    plain = (tmp_path / "gt").read_text().splitlines()
    assert plain[0].split() == ["bloodmnist", "dermamnist"] and plain[1].split() == ["source"]
    assert plain[2].split() == ["imagenet", "0.7000", "0.7000"]


def test_quiet_filter_drops_only_the_named_lines():
    import logging

    from medxfer.quiet import HIDDEN, quiet_third_party

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append((record.name, record.getMessage()))

    handler = Keep()
    loggers = {name for name, _, _ in HIDDEN}
    for name in loggers:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        quiet_third_party(verbose=False)
        quiet_third_party(verbose=False)  # idempotent: one filter per logger
        assert all(len(logging.getLogger(n).filters) == 1 for n in loggers)
        for name, start, _why in HIDDEN:
            logging.getLogger(name).warning(start + " and the rest of the line")
        logging.getLogger("mlflow.store.db.utils").info("Something new in the store")
        assert seen == [("mlflow.store.db.utils", "Something new in the store")]
        for name in loggers:
            for f in list(logging.getLogger(name).filters):
                logging.getLogger(name).removeFilter(f)
        quiet_third_party(verbose=True)  # MEDXFER_VERBOSE: everything shows
        logging.getLogger(HIDDEN[0][0]).info(HIDDEN[0][1])
        assert seen[-1] == (HIDDEN[0][0], HIDDEN[0][1])
    finally:
        for name in loggers:
            logging.getLogger(name).removeHandler(handler)
        quiet_third_party(verbose=False)

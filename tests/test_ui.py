"""The MLflow UI on medxfer's runs: experiment tags, run names, and `medxfer ui`.

`medxfer ui` is checked end to end on a store with a real sweep: it serves on 127.0.0.1 only,
the run-table link it prints shows the sweep's runs by name in headless Chromium, and SIGTERM
stops it together with its server (the port is free, no mlflow/uvicorn process is left). A busy
or invalid port is refused with exit 2 before anything starts.

Chromium is Debian's ``chromium`` + ``chromium-driver`` (``make test`` installs them), driven by
selenium with explicit paths, never downloading anything (``SE_OFFLINE=true``).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser_helpers import chromium
from mlflow import MlflowClient

from medxfer.tracking import schema
from medxfer.tracking.run_names import train_run_name, trial_run_name
from medxfer.tracking.server import RUNS_VIEW
from medxfer.tracking.store import ensure_experiment

from process_helpers import Family
from sweep_helpers import experiment

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "medxfer.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    """Free to serve on, as a server binds (SO_REUSEADDR: TIME_WAIT does not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------- experiment tags


def test_experiments_carry_the_training_view_tags(tracking_uri):
    c = MlflowClient(tracking_uri=tracking_uri)
    sweep = c.get_experiment(ensure_experiment(tracking_uri, "sweep/new"))
    assert sweep.tags[schema.EXPERIMENT_KIND] == "custom_model_development"
    assert sweep.tags[schema.PRIMARY_METRIC] == "test_auc"
    est = c.get_experiment(ensure_experiment(tracking_uri, "transferability/new"))
    assert est.tags[schema.EXPERIMENT_KIND] == "custom_model_development"
    assert schema.PRIMARY_METRIC not in est.tags  # no one metric ranks estimates

    # Experiments made before (or by hand) get the tags when medxfer next writes to them; a
    # GenAI kind is corrected, a primary metric chosen by hand is kept.
    old = c.create_experiment("benchmark/old")
    genai = c.create_experiment("sweep/genai", tags={
        schema.EXPERIMENT_KIND: "genai_development", schema.PRIMARY_METRIC: "val_auc"})
    assert ensure_experiment(tracking_uri, "benchmark/old") == old
    assert ensure_experiment(tracking_uri, "sweep/genai") == genai
    assert c.get_experiment(old).tags[schema.EXPERIMENT_KIND] == "custom_model_development"
    assert c.get_experiment(old).tags[schema.PRIMARY_METRIC] == "test_auc"
    assert c.get_experiment(genai).tags == {
        schema.EXPERIMENT_KIND: "custom_model_development", schema.PRIMARY_METRIC: "val_auc"}


def test_every_experiment_is_created_through_ensure_experiment():
    """One helper sets the tags, so no other module may create experiments."""
    creators = []
    for path in sorted((REPO / "platform" / "medxfer").rglob("*.py")):
        text = path.read_text()
        if re.search(r"\.(create_experiment|set_experiment)\(", text):
            creators.append(path.relative_to(REPO / "platform").as_posix())
    assert creators == ["medxfer/tracking/store.py"]


# --------------------------------------------------------------------------- run names


def test_run_names_say_what_a_run_is():
    cfg = {"method": "finetune", "data": {"flag": "synthpneumonia", "source": "synthchest"},
           "model": {"backbone": "tiny_cnn"}}
    assert trial_run_name(cfg, {"train.lr": 0.01, "train.batch_size": 32}) == \
        "synthchest -> synthpneumonia lr=0.01 bs=32"
    assert trial_run_name(cfg, {"train.lr": 1.23456e-4, "method_config.temperature": 0.5}) \
        == "synthchest -> synthpneumonia lr=0.000123 temperature=0.5"
    # a last part shared by two keys keeps the dotted key
    assert trial_run_name(cfg, {"train.lr": 0.1, "method_config.lr": 0.2}) == \
        "synthchest -> synthpneumonia train.lr=0.1 method_config.lr=0.2"
    scratch = {**cfg, "method": "simclr", "data": {"flag": "synthpneumonia", "source": None},
               "model": {"backbone": "tiny_cnn", "weights": "/w/chest_tiny.pt"}}
    assert train_run_name(scratch) == "simclr chest_tiny -> synthpneumonia"
    assert len(trial_run_name(cfg, {f"k{i}": "x" * 20 for i in range(30)})) == 250


# --------------------------------------------------------------------------- medxfer ui


@pytest.mark.parametrize("port, message", [
    (0, "Invalid value for '--port'"), (70000, "Invalid value for '--port'")])
def test_ui_refuses_an_out_of_range_port(tmp_path, port, message):
    uri = f"sqlite:///{tmp_path / 'ui.db'}"
    out = subprocess.run(CLI + ["ui", "--port", str(port), "--tracking-uri", uri],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert not (tmp_path / "ui.db").exists()


def test_ui_refuses_a_busy_port_and_a_server_uri(tmp_path):
    db = tmp_path / "ui.db"
    db.touch()  # a store that exists (empty): the port is what is wrong
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(CLI + ["ui", "--port", str(port), "--tracking-uri",
                                    f"sqlite:///{db}"],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"--port {port}: already in use on 127.0.0.1" in out.stderr
    assert "Traceback" not in out.stderr and db.stat().st_size == 0  # nothing written
    # a tracking server is not served again (whether it answers or not)
    out = subprocess.run(CLI + ["ui", "--tracking-uri", "http://127.0.0.1:5999"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "http://127.0.0.1:5999" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


@pytest.fixture
def browser(tmp_path, monkeypatch):
    with chromium(tmp_path, monkeypatch, height=1000) as driver:
        yield driver


def _sweep(tmp_path, uri):
    """A real two-trial sweep (toy trainable) on the session's Ray runtime."""
    from medxfer.tune.experiment import experiment_from_dict
    from medxfer.tune.sweep import run_sweep

    from toy_trainable import Toy

    exp = experiment_from_dict(experiment(
        {"algorithm": "grid", "space": {"train.lr": {"grid": [0.1, 0.02]}}}, train={"epochs": 1}))
    run_sweep(exp, name="uisweep", tracking_uri=uri, trainable=Toy(n=96), verbose=0,
              storage_path=str(tmp_path / "ray_results"))
    return ["scratch -> synthpneumonia lr=0.1", "scratch -> synthpneumonia lr=0.02"]


def _wait_for_line(proc, log: Path, pattern: str, family: Family, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while True:
        family.poll()
        m = re.search(pattern, log.read_text())
        if m:
            return m
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {pattern!r} in:\n{log.read_text()[-3000:]}"
        time.sleep(0.25)


def _text(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.TAG_NAME, "body").text


@pytest.mark.timeout(600)
def test_ui_opens_on_the_sweep_run_table_and_stops_on_sigterm(ray_runtime, tmp_path,
                                                               tracking_uri, browser):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    names = _sweep(tmp_path, tracking_uri)
    port = _free_port()
    log = tmp_path / "ui.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(CLI + ["ui", "--port", str(port), "--tracking-uri", tracking_uri],
                                stdout=out, stderr=subprocess.STDOUT)
    family = Family(proc)
    try:
        url = _wait_for_line(proc, log, r"sweep/uisweep: (\S+)", family, 300).group(1)
        assert url.startswith(f"http://127.0.0.1:{port}/#/experiments/")
        family.poll()
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                                   text=True).stdout
        assert listening.strip() and all("127.0.0.1:" in line for line in listening.splitlines())

        # The bare #/experiments/<id>, in a browser with no saved view: MLflow 3.17's UI opens
        # it on a GenAI overview unless the page `medxfer ui` serves makes the run table the
        # default (tracking/server_app.py). The printed link adds the view to the URL.
        bare = url.split(f"/{RUNS_VIEW}")[0]
        assert url == f"{bare}/{RUNS_VIEW}" and re.fullmatch(r".*/#/experiments/\d+", bare)
        browser.get(bare)
        wait = WebDriverWait(browser, 120, poll_frequency=1)
        try:
            expand = wait.until(lambda d: d.find_element(By.XPATH, (
                "//*[@role='row']//a[span[text()='uisweep']]"
                "/ancestor::*[@role='gridcell'][1]//button")))
            expand.click()
            wait.until(lambda d: all(n in _text(d) for n in names))
        except TimeoutException:
            browser.save_screenshot(str(tmp_path / "ui.png"))
            pytest.fail(f"run names {names} not shown at {browser.current_url}; page text:\n"
                        f"{_text(browser)[:2000]}")
        assert "Run Name" in _text(browser)  # the run table's header

        family.poll()
        assert family.named("python") is not None  # the mlflow server and its uvicorn worker
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        gone_by = time.monotonic() + 30
        while family.alive() and time.monotonic() < gone_by:
            time.sleep(0.2)
        assert not family.alive(), [p.cmdline()[:4] for p in family.alive()]
        assert _port_free(port)
    finally:
        family.kill()

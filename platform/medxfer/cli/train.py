"""``medxfer train CONFIG.yaml``: run one method once and record it in MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from medxfer.cli.common import TrackingUriOption


def _progress_line(metrics: dict, epochs: int) -> str:
    if "selected_epoch" in metrics:
        head = f"selected epoch {int(metrics['selected_epoch'])}:"
    else:
        head = f"epoch {int(metrics['epoch'])}/{epochs}:"
    keys = [k for k in ("train_loss", "val_loss", "val_auc", "val_acc", "test_auc")
            if k in metrics]
    return head + "  " + "  ".join(f"{k} {metrics[k]:.4f}" for k in keys)


def _mlflow_callback(uri: str, run_id: str):
    """A Ray Train UserCallback that logs rank 0's reports to the run (in the controller)."""
    from ray.train import UserCallback

    from medxfer.config import REPORT_PARAMS

    data_params = tuple(REPORT_PARAMS)

    class MlflowReport(UserCallback):
        # Pickled by value into the Train controller; imports only mlflow there (the same
        # rule as medxfer.tracking.runs.log_report: step = epoch, numbers only, the data
        # params as params).
        def after_report(self, run_context, metrics, checkpoint):
            import time

            from mlflow import MlflowClient
            from mlflow.entities import Metric, Param

            m, now = metrics[0], int(time.time() * 1000)
            step = int(m.get("epoch", 0))
            numbers = {k: v for k, v in m.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            batch = [Metric(k, float(v), now, step) for k, v in numbers.items()
                     if k != "epoch" and k not in data_params]
            params = [Param(k, str(int(v)) if float(v).is_integer() else str(v))
                      for k, v in numbers.items() if k in data_params]
            MlflowClient(tracking_uri=uri).log_batch(run_id, metrics=batch, params=params)

    return MlflowReport()


def train(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (method, data, model, train, "
                                                "scaling, tracking).", show_default=False)],
    tracking_uri: TrackingUriOption = None,
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Experiment name: runs go to sweep/<name> (default: tracking.experiment, "
                       "else the config file's stem).", show_default=False)] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config value, e.g. --set train.lr=0.01 (repeatable; values "
                      "are YAML).", show_default=False)] = None,
) -> None:
    """Run one method once (fast path, or a TorchTrainer when scaling.num_workers > 1 or GPUs)
    and record it as an MLflow run: tags medxfer.kind=trial/source/target/arch/method, params,
    metrics per epoch (step = epoch; the last step is the selected model), and the selected
    weights as artifacts.

    Example: medxfer train examples/train_finetune.yaml --set train.lr=0.05
    """
    import tempfile

    from medxfer.tune.preflight import load_checked

    # Every input is checked before MLflow is imported or the store touched (exit 2, no run).
    cfg = load_checked(config, set_ or [], cli_tracking_uri=tracking_uri)

    from mlflow import MlflowClient

    from medxfer.tracking import schema
    from medxfer.tracking.run_names import train_run_name
    from medxfer.tracking.runs import log_report, trial_params, trial_tags
    from medxfer.tracking.store import ensure_experiment

    name = name or cfg.tracking.experiment or config.stem
    uri = cfg.tracking.uri
    # Create the store and experiment here, once, before any worker starts (RAY-MLFLOW-NOTES).
    exp_id = ensure_experiment(uri, schema.experiment_name("sweep", name),
                               artifact_root=cfg.tracking.artifact_root)
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(exp_id, run_name=train_run_name(cfg),
                            tags=trial_tags(cfg, sweep=name))
    run_id = run.info.run_id
    status = "FAILED"  # whatever stops the run from here on, it never stays RUNNING
    try:
        for k, v in trial_params(cfg).items():
            client.log_param(run_id, k, v)
        typer.echo(f"run {run_id} in sweep/{name} ({uri}): {cfg.method} on {cfg.data.flag}, "
                   f"{cfg.scaling.num_workers} worker(s)")
        with tempfile.TemporaryDirectory(prefix="medxfer-train-") as tmp:
            if cfg.scaling.distributed:
                final_dir = _distributed(cfg, uri, run_id, tmp)
            else:
                from medxfer.train.launcher import run_local

                def on_report(metrics: dict, _ckpt) -> None:
                    log_report(client, run_id, metrics)
                    typer.echo(_progress_line(metrics, cfg.train.epochs))

                final_dir = run_local(cfg, storage_dir=tmp, on_report=on_report,
                                      keep=2).latest_checkpoint
            if final_dir:
                for f in sorted(Path(final_dir).glob("*.pt")):
                    if f.name != "state.pt":
                        client.log_artifact(run_id, str(f), artifact_path="checkpoint")
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status)
    typer.echo(f"done: run {run_id} ({status}); browse: medxfer ui --tracking-uri {uri}")


def _distributed(cfg, uri: str, run_id: str, tmp: str) -> str | None:
    import ray

    from medxfer.train.launcher import fit_trainer

    started = not ray.is_initialized()
    if started:  # the local runtime of clusters/local.yaml: loopback, tolerant health checks
        import os

        from medxfer.cluster_config import init_local_ray

        init_local_ray(num_cpus=os.cpu_count() or 1, log_to_driver=False)
    try:
        storage = cfg.scaling.storage_path or str(Path(tmp) / "ray")
        result = fit_trainer(cfg, name=f"train-{run_id}", storage_path=storage,
                             callbacks=[_mlflow_callback(uri, run_id)])
        if result.metrics:
            typer.echo(_progress_line(result.metrics, cfg.train.epochs))
        if result.checkpoint is None:
            return None
        return result.checkpoint.to_directory(str(Path(tmp) / "final"))
    finally:
        if started:
            ray.shutdown()

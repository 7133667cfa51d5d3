"""Reading ``clusters/*.yaml``: the local runtime settings medxfer and the tests share.

``clusters/local.yaml`` is a Ray cluster-launcher config (provider ``local``) whose
``metadata.medxfer`` block (a field Ray's schema reserves for user data) holds the
``ray.init()`` keyword arguments of the in-process local runtime and the embedded tracking
store. Those arguments are the one place where the local runtime's GCS health checks are set
(``_system_config``: Ray's defaults declare the only node of a busy laptop dead within seconds);
every local runtime medxfer or its tests start goes through :func:`init_local_ray`. The sweep
verb uses it when no ``--address`` is given; ``tests/test_clusters.py`` checks that the test
session's runtime has the same resources.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_CLUSTERS = Path(__file__).resolve().parents[2] / "clusters"
TRIAL_SLOT = "trial_slot"


@dataclass(frozen=True)
class LocalRuntime:
    ray_init: dict[str, Any]
    tracking_uri: str
    artifact_root: str
    path: Path = field(default=Path())

    def init_kwargs(self, **overrides) -> dict[str, Any]:
        """``ray.init`` keyword arguments (deep-copied), with ``overrides`` applied."""
        kw = copy.deepcopy(self.ray_init)
        kw.update(overrides)
        return kw


def load_yaml(path: str | Path) -> dict:
    import yaml

    with open(path) as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def load_local(path: str | Path | None = None) -> LocalRuntime:
    """The local runtime of ``clusters/local.yaml`` (or ``path``)."""
    p = Path(path) if path is not None else REPO_CLUSTERS / "local.yaml"
    meta = (load_yaml(p).get("metadata") or {}).get("medxfer")
    if not isinstance(meta, dict) or not isinstance(meta.get("ray_init"), dict):
        raise ValueError(f"{p}: metadata.medxfer.ray_init: missing (a mapping of ray.init "
                         "keyword arguments)")
    ray_init = meta["ray_init"]
    if TRIAL_SLOT not in (ray_init.get("resources") or {}):
        raise ValueError(f"{p}: metadata.medxfer.ray_init.resources: must declare "
                         f"{TRIAL_SLOT!r}")
    tracking = meta.get("tracking") or {}
    return LocalRuntime(ray_init=ray_init,
                        tracking_uri=tracking.get("uri", "sqlite:///mlruns.db"),
                        artifact_root=tracking.get("artifact_root", "mlartifacts"), path=p)


def init_local_ray(path: str | Path | None = None, **overrides):
    """Start the local runtime of ``clusters/local.yaml`` with every server on 127.0.0.1.

    ``_node_ip_address`` 127.0.0.1 binds Ray's gRPC servers to loopback; Ray would still rewrite
    127.0.0.1 into the machine's "reachable" IP for addresses unless
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (set here if unset). Returns ``ray.init``'s context.
    """
    import os

    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    return ray.init(**load_local(path).init_kwargs(**overrides))


def stop_own_raylets(grace_s: float = 5.0) -> None:
    """SIGCONT + SIGTERM to the raylets this process started (a stopped one can then exit
    cleanly), then SIGKILL to those still there after ``grace_s``.

    For a driver whose local node froze: ``ray.shutdown()`` waits for its raylet. Only this
    process's own children are signalled, never other Ray runtimes on the machine.
    """
    import signal

    import psutil

    raylets = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.name() == "raylet":
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
                raylets.append(proc)
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(raylets, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            continue


def start_ray(address: str | None, num_cpus: int | None, slots: int) -> bool:
    """Connect to the cluster at ``address``, or start the loopback-only local runtime
    (:func:`init_local_ray`) with ``slots`` trial slots; nothing if Ray is already up. True
    when this call started it (and so shuts it down)."""
    import os

    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=True)
        return True
    init_local_ray(num_cpus=num_cpus or os.cpu_count() or 1, resources={TRIAL_SLOT: slots},
                   object_store_memory=512 * 1024 * 1024)
    return True

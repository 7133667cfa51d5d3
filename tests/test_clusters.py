"""``clusters/``: the launcher configs pass Ray's own schema; every node offers ``trial_slot``.

Ray ships its cluster-config schema inside the package (``ray/autoscaler/ray-schema.json``).
Each launcher YAML is validated twice: as written (so a typo in our keys is caught before Ray
merges its defaults over it) and the way ``ray up`` does it (``prepare_config`` merges the
provider's defaults, then ``validate_config``). The KubeRay manifest is a CRD the launcher
schema does not cover: its structure is checked here.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from medxfer.cluster_config import TRIAL_SLOT, load_local

CLUSTERS = Path(__file__).resolve().parents[1] / "clusters"
SCHEMA_PATH = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
LAUNCHER_CONFIGS = ["local.yaml", "aws.yaml"]


def _load(name):
    with open(CLUSTERS / name) as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def schema():
    assert SCHEMA_PATH.is_file(), f"Ray's cluster schema not found at {SCHEMA_PATH}"
    return json.loads(SCHEMA_PATH.read_text())


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_passes_ray_schema(name, schema):
    raw = _load(name)
    jsonschema.validate(raw, schema)          # as written
    validate_config(prepare_config(raw))      # as `ray up` sees it, defaults merged


def test_schema_validation_catches_mistakes(schema):
    """The check is not vacuous: a misspelt key and a fractional resource are rejected."""
    bad = _load("aws.yaml")
    bad["available_node_types"]["gpu_1x"]["min_worker"] = 1
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        jsonschema.validate(bad, schema)
    bad = _load("aws.yaml")
    bad["available_node_types"]["gpu_1x"]["resources"][TRIAL_SLOT] = 0.5
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(bad))


def test_aws_every_node_type_declares_trial_slot_and_autoscales():
    cfg = _load("aws.yaml")
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    for name, t in types.items():
        assert TRIAL_SLOT in t["resources"], f"{name} lacks {TRIAL_SLOT}"
    workers = {n: t for n, t in types.items() if n != cfg["head_node_type"]}
    assert workers and all(t["resources"].get("GPU", 0) >= 1 for t in workers.values())
    for t in workers.values():  # one trial per GPU; autoscaling from zero
        assert t["resources"][TRIAL_SLOT] == t["resources"]["GPU"]
        assert t["min_workers"] == 0 < t["max_workers"]
    assert types[cfg["head_node_type"]]["resources"][TRIAL_SLOT] == 0
    assert sum(t["max_workers"] for t in workers.values()) >= cfg["max_workers"] > 0
    setup = " ".join(cfg["setup_commands"])
    assert "pip install" in setup and "medxfer" in setup and "MLFLOW_TRACKING_URI" in setup
    # Ray 2.60 token auth: the head and every joining node run in token mode.
    for cmd in cfg["head_start_ray_commands"][-1:] + cfg["worker_start_ray_commands"][-1:]:
        assert "RAY_AUTH_MODE=token" in cmd


def _start_flags(cmd: str) -> dict[str, str]:
    out = {}
    for tok in shlex.split(cmd.replace(";", " ")):
        m = re.match(r"--([\w-]+)=(.*)", tok)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_local_launcher_matches_local_runtime():
    """`ray up clusters/local.yaml` and the in-process runtime offer the same resources."""
    cfg = _load("local.yaml")
    rt = load_local(CLUSTERS / "local.yaml")
    assert rt.ray_init["address"] == "local"
    for cmd in (cfg["head_start_ray_commands"][-1], cfg["worker_start_ray_commands"][-1]):
        flags = _start_flags(cmd)
        assert int(flags["num-cpus"]) == rt.ray_init["num_cpus"]
        assert json.loads(flags["resources"]) == rt.ray_init["resources"]
        assert int(flags["object-store-memory"]) == rt.ray_init["object_store_memory"]
    assert "ray stop" not in " ".join(cfg["head_start_ray_commands"])  # shared machines
    assert rt.tracking_uri.startswith("sqlite:///")


def test_session_runtime_is_local_yaml(ray_runtime):
    """The runtime the tests share (conftest ``ray_runtime``) is the one local.yaml describes."""
    import ray

    rt = load_local(CLUSTERS / "local.yaml")
    res = ray.cluster_resources()
    assert res["CPU"] == rt.ray_init["num_cpus"]
    for k, v in rt.ray_init["resources"].items():
        assert res.get(k) == v


def _resources_param(value: str) -> dict:
    """KubeRay passes rayStartParams verbatim as ``--resources=VALUE`` to a shell."""
    return json.loads(shlex.split(value)[0])


def test_kuberay_manifest_structure():
    with open(CLUSTERS / "kuberay-raycluster.yaml") as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d]
    rc = [d for d in docs if d.get("kind") == "RayCluster"]
    assert len(rc) == 1
    rc = rc[0]
    assert rc["apiVersion"] == "ray.io/v1"
    assert rc["metadata"]["name"]
    spec = rc["spec"]
    assert spec["rayVersion"] == ray.__version__  # the driver's Ray must equal the cluster's
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["authOptions"]["mode"] == "token"

    groups = [("head", spec["headGroupSpec"])] + [
        (g["groupName"], g) for g in spec["workerGroupSpecs"]]
    assert len(groups) >= 2
    for name, g in groups:
        params = g["rayStartParams"]
        assert all(isinstance(v, str) for v in params.values()), f"{name}: values are strings"
        assert TRIAL_SLOT in _resources_param(params["resources"]), name
        containers = g["template"]["spec"]["containers"]
        assert containers and all(c["image"] for c in containers)
        env = {e["name"]: e.get("value") for e in containers[0].get("env", [])}
        assert env.get("MLFLOW_TRACKING_URI", "").startswith("http://"), name
    assert _resources_param(spec["headGroupSpec"]["rayStartParams"]["resources"])[TRIAL_SLOT] == 0

    gpu = [g for g in spec["workerGroupSpecs"]
           if g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")]
    assert gpu, "no GPU worker group"
    for g in gpu:
        limits = g["template"]["spec"]["containers"][0]["resources"]["limits"]
        slots = _resources_param(g["rayStartParams"]["resources"])[TRIAL_SLOT]
        assert slots == int(limits["nvidia.com/gpu"])
        assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        assert g["maxReplicas"] > g["minReplicas"]  # autoscaling

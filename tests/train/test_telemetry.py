"""Hardware telemetry of the training process (``medxfer.train.telemetry``): the sampler, and
what a Ray-bound session adds to its reports. In a real Tune trial and a real TorchTrainer the
sessions' reports are checked by tests/tune/test_sweeps.py and tests/train/test_torch_trainer.py."""

from __future__ import annotations

import time

from medxfer.train.telemetry import NODE_ID_RESULT, Sampler, Telemetry, process_sampler


def test_telemetry_sampler_reports_this_process():
    s = Sampler(interval=0.05).start()
    samples, cpu_max, rss = 0.0, 0.0, 0.0
    try:
        # Busy work in slices; each snapshot resets the aggregates, so add them up. The deadline
        # only bounds a sampler that never samples (a loaded CI machine once starved a 0.3 s
        # window down to one sample).
        t = time.monotonic()
        while time.monotonic() - t < 20 and (samples < 2 or cpu_max <= 0):
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.25:
                sum(i * i for i in range(10_000))
            snap = s.snapshot()
            samples += snap["system/samples"]
            cpu_max = max(cpu_max, snap["system/cpu_percent_max"])
            rss = max(rss, snap["system/memory_rss_mb"])
    finally:
        s.stop()
    assert samples >= 2
    assert rss > 10 and cpu_max > 0


def test_telemetry_windows_start_at_the_session_and_reset_per_report():
    sampler = process_sampler(interval=0.05)
    assert process_sampler() is sampler  # one sampler thread per process
    deadline = time.monotonic() + 20
    while len(sampler._cpu) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)  # samples pile up before the session exists ...
    assert len(sampler._cpu) >= 4
    t = Telemetry()
    first = t.metrics()
    assert first["system/samples"] <= 2  # ... and are not in the session's first window
    samples, rss = 0.0, 0.0
    deadline = time.monotonic() + 20
    while samples < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        m = t.metrics()
        samples, rss = samples + m["system/samples"], max(rss, m["system/memory_rss_mb"])
    assert samples >= 2 and rss > 10


def test_telemetry_names_the_ray_node(ray_runtime):
    import ray

    node = ray.get_runtime_context().get_node_id()
    assert len(node) == 56 and Telemetry().metrics()[NODE_ID_RESULT] == node

"""The study's "most trials at once" line (``tune/study_phases._overlap``): Tune's result
``timestamp`` is whole seconds, so a trial that starts within a second of another's end must not
count as running beside it; trials that truly overlap still do."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from medxfer.tune.study_phases import _overlap


def _result(timestamp: int, total_s: float):
    return SimpleNamespace(metrics_dataframe=pd.DataFrame(
        {"timestamp": [timestamp - 1, timestamp], "time_total_s": [total_s / 2, total_s]}))


def test_back_to_back_trials_within_a_second_do_not_overlap():
    a = _result(110, 10.0)     # ran 100.1 -> 110.1 (timestamp truncated to 110)
    b = _result(120, 10.6)     # ran 110.3 -> 120.9: started after a ended
    assert _overlap([a, b]) == 1
    c = _result(125, 20.0)     # ran 105.x -> 125.x, beside both a and b
    assert _overlap([a, b, c]) == 2


def test_true_overlap_and_missing_metrics():
    assert _overlap([_result(110, 10.0), _result(111, 9.0), _result(112, 5.0)]) == 3
    assert _overlap([SimpleNamespace(metrics_dataframe=None), _result(10, 3.0)]) == 1
    assert _overlap([]) == 0

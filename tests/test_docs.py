"""The README documents every signal, indicator, execution setting and metric the engine has."""

from dataclasses import fields
from pathlib import Path

import numpy as np

from engine.execution import Execution
from engine.stats import compute_metrics
from engine.strategy.catalog import SIGNALS
from engine.strategy.indicators import INDICATORS
from protocol.requests import ExecutionSpec

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_signal_and_indicator_is_listed():
    missing = [n for n in [*SIGNALS, *INDICATORS] if f"| `{n}` |" not in README]
    assert not missing


def test_every_execution_setting_is_listed_and_on_the_wire():
    names = {f.name for f in fields(Execution)}
    assert names == set(ExecutionSpec.model_fields)
    missing = [n for n in names if f"`{n}`" not in README]
    assert not missing


def test_every_metric_is_defined():
    metrics = compute_metrics(
        np.array([100.0, 101.0, 99.0]), np.array([False, True, False]), np.array([-1.0]), 365.0
    )
    missing = [n for n in metrics if f"`{n}`" not in README]
    assert not missing

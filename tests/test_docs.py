"""The README documents every signal, indicator, execution setting and metric the engine has,
and every file derived from the declared parameters equals what the declarations give."""

import importlib.util
import json
from dataclasses import fields
from pathlib import Path

import numpy as np

from engine.execution import Execution
from engine.stats import compute_metrics
from engine.strategy.catalog import SIGNALS
from engine.strategy.indicators import INDICATORS
from protocol.requests import ExecutionSpec

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
_SPEC = importlib.util.spec_from_file_location("gen_params", ROOT / "scripts" / "gen_params.py")
assert _SPEC is not None and _SPEC.loader is not None
gen_params = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(gen_params)


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


def test_derived_files_equal_what_the_declarations_give():
    """scripts/gen_params.py rewrites these; run it after changing a declaration."""
    stale = [str(p.relative_to(ROOT)) for p, (now, want) in gen_params.expected().items()
             if now != want]  # fmt: skip
    assert not stale, f"run python scripts/gen_params.py: {stale} drifted"


def test_every_generated_table_is_in_the_readme():
    names = {m[2] for m in gen_params.BLOCK.finditer(README)}
    assert names == set(gen_params.TABLES)


def test_the_served_score_schema_is_the_generated_one():
    shipped = json.loads((ROOT / "protocol" / "score_strategy.schema.json").read_text())
    assert shipped == gen_params.score_schema()

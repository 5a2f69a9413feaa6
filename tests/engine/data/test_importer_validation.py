"""Every import rule with a broken file, and proof the store is byte-for-byte unchanged after."""

from pathlib import Path

import backtesting
import numpy as np
import pytest

from engine.data.demo import ensure_demo_data
from engine.data.importer import ImportFailed, import_csv
from engine.data.store import BarStore

FILES = Path(backtesting.__file__).parent / "test"
LINES = (FILES / "EURUSD.csv").read_text().splitlines()  # header, then 5000 hourly rows


def snapshot(root: Path) -> dict:
    """Every path under root with its bytes and mtime."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def broken(line: int, edit) -> list[str]:
    """EURUSD.csv with one line (1-based) rewritten by edit(fields) -> fields."""
    lines = list(LINES)
    lines[line - 1] = ",".join(edit(lines[line - 1].split(",")))
    return lines


def put(fields, i, value):
    fields = list(fields)
    fields[i] = value
    return fields


CASES = [
    ("high below max(open, close)", 120, lambda f: put(f, 2, "1.0"), "high 1.0 is below max"),
    ("low above min(open, close)", 121, lambda f: put(f, 3, "9.0"), "low 9.0 is above min"),
    ("NaN close", 122, lambda f: put(f, 4, "nan"), "close is missing or NaN"),
    ("empty volume", 123, lambda f: put(f, 5, ""), "volume '' is not a number"),
    ("text price", 124, lambda f: put(f, 1, "abc"), "open 'abc' is not a number"),
    ("negative volume", 125, lambda f: put(f, 5, "-3"), "negative volume -3.0"),
    ("negative prices", 126, lambda f: [f[0], "-1", "-0.5", "-2", "-1", f[5]], "negative open"),
    (
        "duplicate timestamp",
        127,
        lambda f: put(f, 0, LINES[125].split(",")[0]),
        "ordered and unique",
    ),
    ("out of order", 128, lambda f: put(f, 0, "2017-01-01 00:00:00"), "ordered and unique"),
    ("off the 1h grid", 129, lambda f: put(f, 0, f[0][:-5] + "30:00"), "not on the 1h grid"),
    ("bad timestamp", 130, lambda f: put(f, 0, "yesterday"), "neither ISO 8601 nor an epoch"),
    ("too few fields", 131, lambda f: f[:3], "3 fields, expected at least 6"),
]


@pytest.fixture
def store(tmp_path) -> BarStore:
    s = BarStore(tmp_path / "bars")
    ensure_demo_data(s, days=2)
    head = tmp_path / "head.csv"
    head.write_text("\n".join(LINES[:101]) + "\n")
    import_csv(s, head, "EURUSD")
    s.load("EURUSD", "4h", 0, 2**62)  # build a cache entry too
    return s


@pytest.mark.parametrize(("label", "line", "edit", "reason"), CASES, ids=[c[0] for c in CASES])
def test_broken_file_names_the_row_and_changes_nothing(store, tmp_path, label, line, edit, reason):
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(broken(line, edit)) + "\n")
    before = snapshot(store.root)
    with pytest.raises(ImportFailed) as err:
        import_csv(store, path, "EURUSD")
    assert err.value.row == line and f"row {line}: " in str(err.value)
    assert reason in str(err.value), str(err.value)
    # a fresh symbol is not created either
    with pytest.raises(ImportFailed):
        import_csv(store, path, "NEW", resolution="1h")
    assert snapshot(store.root) == before


def test_overlap_that_disagrees_is_an_error(store, tmp_path):
    lines = list(LINES[:1]) + LINES[51:201]  # rows 50..200: overlaps rows 50..100 stored
    lines[30] = ",".join(put(lines[30].split(","), 5, "999"))  # line 31 = stored row 80
    path = tmp_path / "overlap.csv"
    path.write_text("\n".join(lines) + "\n")
    before = snapshot(store.root)
    with pytest.raises(
        ImportFailed, match=r"row 31: overlaps a stored bar that disagrees \(volume 999.0"
    ):
        import_csv(store, path, "EURUSD")
    assert snapshot(store.root) == before


def test_equal_overlap_and_append(store, tmp_path):
    path = tmp_path / "more.csv"
    path.write_text("\n".join([LINES[0], *LINES[51:301]]) + "\n")
    report = import_csv(store, path, "EURUSD")
    assert report.rows == 250 and report.added == 200
    got = store.load("EURUSD", "1h", 0, 2**62)
    full = BarStore(tmp_path / "full")
    whole = tmp_path / "whole.csv"
    whole.write_text("\n".join(LINES[:301]) + "\n")
    import_csv(full, whole, "EURUSD")
    ref = full.load("EURUSD", "1h", 0, 2**62)
    for col in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, col), getattr(ref, col))


def test_other_refusals_change_nothing(store, tmp_path):
    before = snapshot(store.root)
    with pytest.raises(ImportFailed, match="rows are 1d apart but EURUSD is stored at 1h"):
        import_csv(store, FILES / "GOOG.csv", "eurusd")
    with pytest.raises(ImportFailed, match="stored at 1h, not 1d"):
        import_csv(store, FILES / "GOOG.csv", "eurusd", resolution="1d")
    with pytest.raises(ImportFailed, match="synthetic demo data"):
        import_csv(store, FILES / "EURUSD.csv", "ETH-USD")
    with pytest.raises(ValueError, match="already names BTC-USD"):
        import_csv(store, FILES / "GOOG.csv", "GOOG", aliases=["btc"])
    with pytest.raises(ValueError, match="already names ETH-USD"):
        import_csv(store, FILES / "GOOG.csv", "ethusd")
    assert snapshot(store.root) == before


def test_replace_starts_over(store):
    report = import_csv(store, FILES / "GOOG.csv", "EURUSD", replace=True)
    assert report.resolution == "1d" and store.resolve("EURUSD").bar_count == 2148

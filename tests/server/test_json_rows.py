"""JSON rows laid out from columns equal the rows encoded one by one with Python's own tools."""

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from engine.output import Table
from server.json_rows import Rows, encode, of_dicts


def iso(ns: int) -> str:
    """Python's ISO 8601 UTC to the millisecond (floored), with a Z."""
    stamp = datetime.fromtimestamp(ns // 10**6 / 1000, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def by_hand(table: Table) -> list[dict]:
    """Each row built by Python and encoded by the json module, then parsed back."""
    rows = []
    for i in range(len(table)):
        row = {}
        for name, col in table.columns.items():
            value = col[i].item()
            if name in table.labels:
                value = table.labels[name][value]
            elif name in table.times:
                value = iso(value)
            elif isinstance(value, float) and value != value:
                value = None
            row[name] = value
        rows.append(json.loads(json.dumps(row)))
    return rows


def sample(n: int, seed: int = 3) -> Table:
    rng = np.random.default_rng(seed)
    cols = {
        "symbol": rng.integers(0, 3, n),
        "time": rng.integers(-2 * 10**18, 4 * 10**18, n),  # 1906 to 2096, sub-ms parts too
        "price": rng.normal(size=n) * 10.0 ** rng.integers(-12, 15, n),
        "r": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
        "whole": rng.integers(-(10**12), 10**12, n),
        "flag": rng.random(n) < 0.5,
        "tiny": np.where(rng.random(n) < 0.5, np.nan, 0.0),  # tokens narrower than null
    }
    labels = {"symbol": ("BTC-USD", 'Q"uote\\d', "ÉTH/€")}
    return Table(cols, labels, ("time",))


@pytest.mark.parametrize("n", [1, 5, 1023, 1024, 1025, 5000])
def test_rows_equal_each_row_encoded_by_hand(n: int) -> None:
    table = sample(n)
    rows = encode(table)
    assert len(rows) == n
    assert json.loads(rows.array()) == by_hand(table)


def test_keys_follow_the_column_order_and_times_keep_their_millisecond() -> None:
    table = Table({"b": np.array([1.5]), "a": np.array([1_704_067_200_123_999_999])}, times=("a",))
    assert encode(table).array() == b'[{"b":1.5,"a":"2024-01-01T00:00:00.123Z"}]'


def test_any_run_of_rows_and_every_page_is_a_slice() -> None:
    table = sample(1234)
    rows, expected = encode(table), by_hand(table)
    for start, stop in ((0, 0), (0, 1), (7, 500), (499, 501), (1200, 5000)):
        assert json.loads(rows.array(start, stop)) == expected[start:stop]
    got = []
    for number, (page, count, data, ends) in enumerate(rows.pages(500)):
        assert page == number and count == min(500, 1234 - 500 * number)
        offsets = np.frombuffer(ends, dtype=">i4")
        assert offsets.size == count and offsets[-1] == len(data)
        got += json.loads(b"[" + data[:-1] + b"]")
    assert got == expected


def test_an_empty_table_and_the_wire_form() -> None:
    assert encode(Table({"x": np.zeros(0)})).array() == b"[]"
    assert encode(Table({})).array() == b"[]"
    rows = encode(sample(40))
    back = Rows.from_wire(json.loads(json.dumps(rows.to_wire())))
    assert back.data == rows.data and back.ends.tolist() == rows.ends.tolist()


def test_rows_of_dicts_are_the_same_rows() -> None:
    table = sample(30)
    assert json.loads(of_dicts(by_hand(table)).array()) == by_hand(table)

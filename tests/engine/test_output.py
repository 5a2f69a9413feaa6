"""engine.output.Table: named columns, with rows as dicts on demand."""

import numpy as np
import pytest

from engine.output import Table


def table() -> Table:
    cols = {
        "symbol": np.array([1, 0, 1]),
        "t": np.array([10, 20, 30]),
        "x": np.array([1.5, np.nan, -2.0]),
        "ok": np.array([True, False, True]),
    }
    return Table(cols, {"symbol": ("A", "B")}, ("t",))


def test_rows_decode_labels_and_read_nan_as_none() -> None:
    t = table()
    assert len(t) == 3 and t.names() == ("symbol", "t", "x", "ok")
    assert t.rows() == [
        {"symbol": "B", "t": 10, "x": 1.5, "ok": True},
        {"symbol": "A", "t": 20, "x": None, "ok": False},
        {"symbol": "B", "t": 30, "x": -2.0, "ok": True},
    ]
    assert t[-1] == {"symbol": "B", "t": 30, "x": -2.0, "ok": True} and t[1:2] == [t[1]]
    assert t["symbol"].tolist() == ["B", "A", "B"] and t["t"].tolist() == [10, 20, 30]
    with pytest.raises(IndexError):
        t[3]


def test_equality_with_rows_and_tables_and_emptiness() -> None:
    assert table() == table() and table() == table().rows() and table() != []
    assert Table({}) == [] and not Table({}) and len(Table({"x": np.zeros(0)})) == 0
    (first, *_rest) = table()
    assert first["symbol"] == "B"


def test_of_rows_codes_labels_and_columns_must_be_equal_length() -> None:
    rows = table().rows()
    again = Table.of_rows(rows, ("symbol", "t", "x", "ok"), {"symbol": ("A", "B")}, ("t",))
    assert again == rows and again.columns["symbol"].tolist() == [1, 0, 1]
    empty = Table.of_rows([], ("symbol", "t"), {"symbol": ("A",)}, ("t",))
    assert len(empty) == 0 and empty.columns["symbol"].dtype == np.int64
    with pytest.raises(ValueError, match="same length"):
        Table({"a": np.zeros(2), "b": np.zeros(3)})

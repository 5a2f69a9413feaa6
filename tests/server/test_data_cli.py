"""`barstream data import|list|export` through the real command line (subprocesses)."""

import subprocess
import sys
from pathlib import Path

import backtesting
import numpy as np
import orjson

from engine.data.demo import DEMO_SYMBOLS, generate_bars

FILES = Path(backtesting.__file__).parent / "test"
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "data", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(root: Path) -> dict:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_import_list_export_round_trip(tmp_path):
    d = tmp_path / "data"
    r = cli("import", FILES / "GOOG.csv", "--symbol", "GOOG", "--alias", "GOOGL", "--data-dir", d)
    assert r.returncode == 0, r.stderr
    assert "GOOG: 2148 rows read (generic, 1d), 2148 new bars" in r.stdout
    assert "calendar exchange" in r.stdout
    listed = cli("list", "--data-dir", d)
    assert listed.returncode == 0
    head, row = listed.stdout.splitlines()
    assert head.split()[:3] == ["symbol", "aliases", "base"]
    assert row.split() == [
        "GOOG", "GOOGL", "1d", "2004-08-19T00:00:00Z", "2013-03-01T00:00:00Z", "2148", "463",
        "exchange", "no",
    ]  # fmt: skip
    rows = orjson.loads(cli("list", "--json", "--data-dir", d).stdout)
    assert rows[0]["symbol"] == "GOOG" and rows[0]["synthetic"] is False
    out = tmp_path / "goog.csv"
    assert cli("export", "--symbol", "googl", "-o", out, "--data-dir", d).returncode == 0
    d2 = tmp_path / "data2"
    assert cli("import", out, "--symbol", "G", "--data-dir", d2).returncode == 0
    again = cli("export", "--symbol", "G", "--data-dir", d2)
    assert again.stdout == out.read_text()
    part = cli(
        "export",
        "--symbol",
        "GOOG",
        "--start",
        "2004-08-20",
        "--end",
        "2004-08-24",
        "--data-dir",
        d,
    )
    assert [line.split(",")[0] for line in part.stdout.splitlines()] == [
        "timestamp", "2004-08-20T00:00:00Z", "2004-08-23T00:00:00Z", "2004-08-24T00:00:00Z",
    ]  # fmt: skip


def test_export_resampled_and_finer_refused(tmp_path):
    d = tmp_path / "data"
    assert (
        cli("import", FILES / "EURUSD.csv", "--symbol", "EURUSD", "--data-dir", d).returncode == 0
    )
    r = cli("export", "--symbol", "eurusd", "--resolution", "4h", "--data-dir", d)
    assert r.returncode == 0 and r.stdout.count("\n") > 1000
    r = cli("export", "--symbol", "eurusd", "--resolution", "1m", "--data-dir", d)
    assert r.returncode == 1 and "EURUSD has no 1m data; available: 1h, 4h, 1d" in r.stderr


def test_bad_file_is_rejected_with_its_row_and_changes_nothing(tmp_path):
    d = tmp_path / "data"
    assert (
        cli("import", FILES / "EURUSD.csv", "--symbol", "EURUSD", "--data-dir", d).returncode == 0
    )
    lines = (FILES / "EURUSD.csv").read_text().splitlines()
    f = lines[4000].split(",")
    lines[4000] = ",".join([f[0], f[1], "0.5", *f[3:]])  # high below open: line 4001
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    before = snapshot(d)
    r = cli("import", bad, "--symbol", "EURUSD", "--data-dir", d)
    assert r.returncode == 1
    assert "bad.csv: row 4001: high 0.5 is below max(open, close)" in r.stderr
    assert "nothing was changed" in r.stderr
    assert snapshot(d) == before


def test_headerless_file_asks_for_format_and_kline_is_accepted(tmp_path):
    d = tmp_path / "data"
    rows = [
        f"{1704067200000 + i * 60000},1,2,0.5,1.5,10,{1704067259999 + i * 60000},15,3,5,7,0"
        for i in range(5)
    ]
    (tmp_path / "k.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "n.csv").write_text("\n".join(r.rsplit(",", 6)[0] for r in rows) + "\n")
    r = cli("import", tmp_path / "n.csv", "--symbol", "N", "--data-dir", d)
    assert r.returncode == 1 and "pass --format" in r.stderr
    r = cli("import", tmp_path / "k.csv", "--symbol", "BTCUSDT", "--data-dir", d)
    assert r.returncode == 0 and "(kline, 1m)" in r.stdout, r.stderr


def test_progress_bar_on_a_big_file(tmp_path):
    bars = generate_bars(DEMO_SYMBOLS[1], 1_704_067_200 * 10**9, 100_000, np.random.default_rng(9))
    iso = np.datetime_as_string(bars.ts.astype("datetime64[ns]"), unit="s", timezone="UTC")
    big = tmp_path / "big.csv"
    with big.open("w") as f:
        f.write("timestamp,open,high,low,close,volume\n")
        cols = [getattr(bars, c).tolist() for c in ("open", "high", "low", "close", "volume")]
        f.writelines(
            f"{t},{o!r},{h!r},{lo!r},{c!r},{v!r}\n"
            for t, o, h, lo, c, v in zip(iso, *cols, strict=True)
        )
    assert big.stat().st_size > 4 << 20
    r = cli("import", big, "--symbol", "BIG", "--data-dir", tmp_path / "data")
    assert r.returncode == 0, r.stderr
    assert "importing big.csv [" in r.stderr and "100%" in r.stderr
    assert r.stderr.count("importing big.csv [") >= 2 and "100000 new bars" in r.stdout
    quiet = cli("import", big, "--symbol", "BIG", "--no-progress", "--data-dir", tmp_path / "data")
    assert quiet.returncode == 0 and quiet.stderr == "" and " 0 new bars" in quiet.stdout

"""The browser page in Debian's headless Chromium, against a real server behind a cutting proxy."""

import os
import shutil
from pathlib import Path

import httpx
from playwright.sync_api import Page

from tests.browser.browser import Watched, sign_in, stream_ids, until
from tests.server.harness import ServerProcess, minute_run
from tests.server.proxy import Proxy

README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"
STATE = "document.querySelector('main.run').dataset.state"
DASH = "\u2013"  # the page writes ranges with an en dash
PROGRESS = "Number(document.querySelector('main.run .progress').getAttribute('aria-valuenow'))"


def submit_demo_run(page: Page, name: str) -> None:
    """Fill the new-run form as a person would: ETH, 1-minute bars over 2024, the demo strategy."""
    page.click("#nav >> text=New run")
    page.wait_for_selector("#submit")
    page.select_option("#symbols", ["ETH-USD"])
    page.select_option("#resolution", "1m")
    page.fill("#start", "2024-01-01")
    page.fill("#end", "2025-01-01")
    page.fill("#name", name)
    page.click("#demo")
    page.click("#submit")
    page.wait_for_selector("main.run")


def test_a_run_followed_live_survives_a_dropped_connection(
    web: ServerProcess, proxy: Proxy, watched: Watched, shots: Path
) -> None:
    page = watched.page
    sign_in(page, proxy.url, web.key)
    submit_demo_run(page, "browser run")

    first = until(
        page, f"{STATE} === 'running' && {PROGRESS} > 0 && {PROGRESS} < 100 && {PROGRESS}"
    )
    second = until(page, f"{PROGRESS} > {first} && {PROGRESS}")
    assert 0 < first < second
    page.screenshot(path=shots / "running.png", full_page=True)

    assert page.evaluate(STATE) == "running"
    assert proxy.drop_all() >= 1  # the stream's connection, cut mid-run
    until(page, "window.__barstream.statuses.includes('resumed')")
    resumed_after = int(page.inner_text("#connection").split("resumed after event ")[1].split()[0])
    until(page, f"{STATE} === 'completed' && window.__barstream.statuses.includes('finished')")

    trace = page.evaluate("window.__barstream")
    statuses = trace["statuses"]
    assert statuses[:2] == ["connecting", "live"] and statuses[-1] == "finished"
    assert statuses.index("reconnecting") < statuses.index("resumed")
    assert trace["gaps"] == []
    ids = stream_ids(web, trace["run"])
    assert ids == list(range(1, len(ids) + 1))
    assert trace["events"] == ids  # every event applied once, in order, none missed
    assert "no event missed" in page.inner_text("#connection")
    sockets = [u for u in watched.urls if "/stream?" in u]
    assert len(sockets) == 2 and "last_event_id" not in sockets[0]
    assert sockets[1].endswith(f"&last_event_id={resumed_after}")

    results = httpx.get(
        f"{web.url}/api/v2/backtests/{trace['run']}/results",
        headers={"Authorization": f"Bearer {web.key}"},
    ).json()
    check_results(page, results)
    page.screenshot(path=shots / "completed.png", full_page=True)
    save_readme_shot(page, shots)
    check_archive(page, trace["run"])


def check_results(page: Page, results: dict) -> None:
    """The metrics table, both charts with every trade marked, and the paged round trips."""
    until(
        page,
        "document.querySelector('#equity-chart canvas') && document.querySelector('#drawdown-chart canvas')",
    )
    trips = results["round_trips"]
    assert len(trips) > 25
    charts = page.locator(".charts")
    assert charts.get_attribute("data-points") == str(len(results["equity"]))
    marks = len(trips) + sum(1 for t in trips if t["exit_time"])
    assert charts.get_attribute("data-markers") == str(marks)
    assert page.locator("#metrics tr").count() == len(results["metrics"])
    assert page.inner_text("[data-metric=trade_count]") == str(len(trips))  # the final figure
    assert page.locator("#metrics tr", has_text="trade_count").inner_text().split()[-1] == str(
        len(trips)
    )
    pages = -(-len(trips) // 25)
    assert (
        page.inner_text("#trades .page-label")
        == f"trades 1{DASH}25 of {len(trips)} · page 1 of {pages}"
    )
    assert page.locator("#trades tbody tr").count() == 25
    page.click("#trades >> text=Next →")
    first_row = page.locator("#trades tbody tr").first.inner_text()
    assert first_row.startswith("26")
    assert trips[25]["entry_time"][:19].replace("T", " ") in first_row
    page.click("#trades >> text=← Previous")


def save_readme_shot(page: Page, shots: Path) -> None:
    """The README's picture: the top of a completed run. Written to docs/ on request only, so a
    test run leaves the work tree as it was (BARSTREAM_WRITE_SCREENSHOT=1 refreshes it)."""
    path = shots / "readme.png"
    page.evaluate("scrollTo(0, 0)")
    page.screenshot(path=path, clip={"x": 0, "y": 0, "width": 1280, "height": 1240}, full_page=True)
    if os.environ.get("BARSTREAM_WRITE_SCREENSHOT"):
        shutil.copyfile(path, README_SHOT)


def check_archive(page: Page, run_id: str) -> None:
    """Archive hides the run from the list; the toggle shows it again, marked."""
    page.click("#archive")
    until(page, "document.querySelector('main.run').dataset.archived === 'true'")
    page.evaluate("location.hash = '#/runs'")
    page.wait_for_selector("#page-label:has-text('of')")
    assert page.locator(f"tr[data-run-id='{run_id}']").count() == 0
    page.check("#archived-toggle")
    page.wait_for_selector(f"tr[data-run-id='{run_id}'] .badge.archived")


def test_cancel_from_the_run_view(web: ServerProcess, proxy: Proxy, watched: Watched) -> None:
    page = watched.page
    headers = {"Authorization": f"Bearer {web.key}"}
    run_id = httpx.post(f"{web.url}/api/v2/backtests", json=minute_run(), headers=headers).json()[
        "run_id"
    ]
    sign_in(page, proxy.url, web.key, f"#/run/{run_id}")
    until(page, f"{STATE} === 'running' && !document.querySelector('#cancel').disabled")
    page.click("#cancel")
    until(page, f"{STATE} === 'cancelled' && window.__barstream.statuses.includes('finished')")
    assert page.locator("#cancel").is_disabled()
    assert "the run was cancelled" in page.inner_text("main.run")
    ids = page.evaluate("window.__barstream.events")
    assert ids == stream_ids(web, run_id) == list(range(1, len(ids) + 1))
    assert page.locator("#results").inner_text() == ""  # no results for a cancelled run


def test_a_bad_key_is_refused_and_not_kept(proxy: Proxy, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{proxy.url}/")
    page.fill("#key", "bs_not_a_key")
    page.click("#sign-in")
    page.wait_for_selector(".notice.error:has-text('invalid API key')")
    assert page.evaluate("sessionStorage.getItem('barstream.key')") is None
    assert page.locator("#sign-out").count() == 0


def test_the_trade_table_reads_pages_past_the_first_from_the_server(
    web: ServerProcess, proxy: Proxy, watched: Watched
) -> None:
    """A run of more than 500 round trips: the results carry 500, the table fetches the rest."""
    import uuid

    import numpy as np

    from engine.data.store import Bars, BarStore

    n, start = 40_000, 1_704_067_200 * 10**9  # 1-minute sine wave: an EMA cross every cycle
    close = 100.0 + 5 * np.sin(np.arange(n) / 8.0)
    open_ = np.r_[close[0], close[:-1]]
    ts = start + np.arange(n, dtype=np.int64) * 60 * 10**9
    name = f"PAGEWAVE{uuid.uuid4().hex[:6].upper()}"
    hi, lo = np.maximum(open_, close) + 0.01, np.minimum(open_, close) - 0.01
    BarStore(web.data_dir / "bars").write(name, Bars(ts, open_, hi, lo, close, np.ones(n)))
    cross = {"entry": ["cross_above(ema(5), ema(10))"], "exit": ["cross_below(ema(5), ema(10))"]}
    body = {"symbols": [name], "resolution": "1m", "start": "2024-01-01T00:00:00Z",
            "end": "2024-01-28T00:00:00Z", "capital": 10_000.0, "strategy": cross}  # fmt: skip
    auth = {"Authorization": f"Bearer {web.key}"}
    run_id = httpx.post(f"{web.url}/api/v2/backtests", json=body, headers=auth).json()["run_id"]
    page = watched.page
    sign_in(page, proxy.url, web.key, f"/run/{run_id}")
    until(page, f"{STATE} === 'completed' && document.querySelector('#trades .page-label')")
    trips = httpx.get(f"{web.url}/api/v1/backtests/{run_id}", headers=auth).json()["trades"]
    assert len(trips) > 525
    pages = -(-len(trips) // 25)
    for k in range(2, 22):  # to page 21: rows 501-525, past the 500 the results carried
        page.click("#trades >> text=Next →")
        until(
            page,
            f"document.querySelector('#trades .page-label').textContent.includes('page {k} of')",
        )
    assert page.inner_text("#trades .page-label") == (
        f"trades 501{DASH}525 of {len(trips)} · page 21 of {pages}"
    )
    rows = page.locator("#trades tbody tr")
    assert rows.count() == 25
    first = rows.first.inner_text()
    assert first.startswith("501") and trips[500]["entry_time"][:19].replace("T", " ") in first
    assert trips[524]["exit_time"][:19].replace("T", " ") in rows.last.inner_text()

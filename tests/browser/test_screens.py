"""The run list, the new-run form's other strategy sources and its errors, and the docs page."""

from pathlib import Path

import httpx

from tests.browser.browser import Watched, sign_in, until
from tests.server.harness import ServerProcess, backtest
from tests.server.proxy import Proxy

DASH = "\u2013"  # the page writes ranges with an en dash
LABEL = "document.querySelector('#page-label').textContent"


def test_run_list_pages_filters_and_shows_archived(
    web: ServerProcess, proxy: Proxy, watched: Watched
) -> None:
    key = web.create_key("lister")
    with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {key}"}) as c:
        ids = [
            c.post("/api/v2/backtests", json=backtest(name=f"list-{i}", end="2024-04-01T00:00:00Z")).json()["run_id"]
            for i in range(1, 6)
        ]  # fmt: skip
        assert c.post(f"/api/v2/backtests/{ids[1]}/archive").status_code == 200
    page = watched.page
    sign_in(page, proxy.url, key, "#/runs?limit=2")
    until(page, f"{LABEL} === 'runs 1{DASH}2 of 4'")
    names = lambda: page.locator("#runs tbody tr td:first-child a").all_inner_texts()  # noqa: E731
    assert names() == ["list-5", "list-4"]
    assert page.locator("#prev-page").is_disabled()
    page.click("#next-page")
    until(page, f"{LABEL} === 'runs 3{DASH}4 of 4'")
    assert names() == ["list-3", "list-1"]
    assert page.locator("#next-page").is_disabled()  # no Link rel="next" on the last page
    page.click("#prev-page")
    until(page, f"{LABEL} === 'runs 1{DASH}2 of 4'")

    page.check("#archived-toggle")
    until(page, f"{LABEL} === 'runs 1{DASH}2 of 5'")
    assert "archived=1" in page.evaluate("location.hash")
    page.select_option("#state-filter", "failed")
    until(page, f"{LABEL} === 'runs 0{DASH}0 of 0'")
    page.select_option("#state-filter", "completed")
    until(page, f"{LABEL} === 'runs 1{DASH}2 of 5'")  # every run finished by now
    page.click("#next-page")
    until(page, f"{LABEL} === 'runs 3{DASH}4 of 5'")  # the next page's link comes with it
    page.click("#next-page")
    until(page, f"{LABEL} === 'runs 5{DASH}5 of 5'")
    assert page.locator(f"tr[data-run-id='{ids[0]}'] .badge.completed").count() == 1
    page.click(f"tr[data-run-id='{ids[0]}'] a")
    until(page, "document.querySelector('main.run')?.dataset.state === 'completed'")
    assert page.inner_text("main.run h1") == "list-1"


def test_form_shows_the_api_error_with_its_field(
    web: ServerProcess, proxy: Proxy, watched: Watched
) -> None:
    page = watched.page
    sign_in(page, proxy.url, web.key, "#/new")
    page.wait_for_selector("#submit")
    page.check("input[name=mode][value=json]")
    text = page.input_value("#strategy-json")
    assert '"macd_bullish_cross"' in text and '"timeframe": "1h"' in text  # the picked signals
    page.fill("#strategy-json", text.replace("macd_bullish_cross", "macd_bullish_crosss"))
    page.click("#submit")
    error = page.wait_for_selector("#form-error")
    assert error.get_attribute("data-code") == "invalid_strategy"
    assert error.get_attribute("data-field") == "strategy.entry[0].name"
    assert "macd_bullish_crosss" in error.inner_text()

    page.fill("#strategy-json", "{not json")
    page.click("#submit")
    page.wait_for_selector(".notice.error:has-text('does not parse')")


def test_a_template_run_from_the_form(web: ServerProcess, proxy: Proxy, watched: Watched) -> None:
    page = watched.page
    sign_in(page, proxy.url, web.key, "#/new")
    page.wait_for_selector("#submit")
    page.check("input[name=mode][value=template]")
    page.select_option("#template", "tpl_ma_cross")
    assert (
        page.input_value("#template-params input[name=window_fast]") == "12"
    )  # the template's example
    page.fill("#template-params input[name=window_slow]", "30")
    preview = page.text_content("#body-preview")
    assert '"template": "tpl_ma_cross"' in preview and '"window_slow": 30' in preview
    page.click("#submit")
    until(page, "document.querySelector('main.run')?.dataset.state === 'completed'")
    page.wait_for_selector("#metrics tr")
    run_id = page.evaluate("window.__barstream.run")
    config = httpx.get(
        f"{web.url}/api/v2/backtests/{run_id}", headers={"Authorization": f"Bearer {web.key}"}
    ).json()["config"]
    assert config["template"] == "tpl_ma_cross"
    assert config["template_params"]["window_slow"] == 30


def test_docs_page_renders_every_operation(proxy: Proxy, watched: Watched, shots: Path) -> None:
    doc = httpx.get(f"{proxy.url}/openapi.json").json()
    operations = [(m, p) for p, item in doc["paths"].items() for m in item]
    page = watched.page
    page.goto(f"{proxy.url}/docs")
    page.wait_for_selector(".op")
    assert page.locator(".op").count() == len(operations)
    for method, path in operations:
        assert page.locator(f"details[id='op-{method}-{path}']").count() == 1
    page.click("details[id='op-post-/api/v2/backtests'] > summary")
    page.click("details[id='op-post-/api/v2/backtests'] a[href='#schema-BacktestCreate']")
    until(page, "document.getElementById('schema-BacktestCreate').open")
    assert "strategy_json" in page.inner_text("#schema-BacktestCreate")
    assert page.locator(".schema").count() == len(doc["components"]["schemas"])
    page.screenshot(path=shots / "docs.png")

"""The platform's web page in headless Chromium, against the service on a real port.

An aggregator logs in, picks a session, submits, revises and withdraws an offer, sees the
service's message when it refuses one, and never sees another aggregator's offer; after
clearing it reads its awards and statement and the page draws the price charts (or hides
them when Plotly does not load). The page asks nothing of any other host.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import tsodso.io
from tsodso.platform.app import create_app
from tsodso.platform.store import seed_scenario_parties

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "password123"
AGG_A, AGG_B = "agg_case33bw@9", "agg_case33bw@10"
B_OFFER, B_DER = "b-private-offer-7", "case33bw@10/demand_response25"
WAIT_MS = 20_000


# ---------------------------------------------------------------------------- service
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def system() -> Any:
    return tsodso.io.load("default")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, system: Any) -> Iterator[str]:
    """The service (uvicorn in a thread) with the scenario's parties; its base URL."""
    import uvicorn

    tmp = tmp_path_factory.mktemp("platform")
    app = create_app(str(tmp / "platform.sqlite"), secret="x" * 40, data_dir=tmp / "data",
                     gate_poll_s=0)
    with app.state.platform.maker.begin() as s:
        seed_scenario_parties(s, system, PASSWORD)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="platform-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the service did not start")
        time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _client(base: str, username: str) -> httpx.Client:
    token = httpx.post(f"{base}/token", data={"username": username, "password": PASSWORD}
                       ).raise_for_status().json()["access_token"]
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                        timeout=120)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _demand_response(system: Any, aggregator: str) -> list[tuple[str, float]]:
    ders = system.ders
    mine = ders[(ders.kind == "demand_response") & (ders.aggregator_id == aggregator)]
    return [(str(d), float(p)) for d, p in zip(mine.der_id, mine.p_max_mw, strict=True)]


@pytest.fixture
def market(service: str) -> Iterator[dict[str, Any]]:
    """A session (tso_only, gate open now) where aggregator B has already offered."""
    now = datetime.now(UTC)
    with _client(service, "market-operator") as mo, _client(service, AGG_B) as b:
        sid = mo.post("/api/sessions", json={
            "name": "browser test", "scenario": "default", "scheme": "tso_only",
            "gate_open": _iso(now - timedelta(hours=1)),
            "gate_close": _iso(now + timedelta(hours=1))}).raise_for_status().json()["id"]
        b.post(f"/api/sessions/{sid}/offers", json={
            "offer_id": B_OFFER, "der_id": B_DER,
            "steps": [{"quantity_mw": 0.1, "price_per_mwh": 25}]}).raise_for_status()
        yield {"sid": sid, "mo": mo}


# ---------------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        if os.environ.get("CI"):
            raise
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Chromium at {CHROMIUM} (.ci/run installs Debian's "
                        "chromium package)")
        pytest.skip(f"no Chromium at {CHROMIUM} (install Debian's chromium package)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


class Page:
    """A fresh browser context on the service: console errors and any request to another
    host (aborted) are recorded."""

    def __init__(self, browser: Any, base: str, block: str | None = None) -> None:
        self.base, self.errors, self.foreign = base, [], []
        self.context = browser.new_context(viewport={"width": 1300, "height": 900})
        self.context.route("**/*", self._route)
        self.block = block
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route: Any) -> None:
        url = route.request.url
        if not url.startswith(self.base):
            self.foreign.append(url)
            route.abort()
        elif self.block and self.block in url:
            route.abort()
        else:
            route.continue_()

    def _console(self, message: Any) -> None:
        # refused requests (4xx) are logged by Chromium itself: the page shows them
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)

    def login(self, username: str, sid: int) -> Any:
        from playwright.sync_api import expect

        page = self.page
        page.goto(self.base + "/")
        page.fill("#login-username", username)
        page.fill("#login-password", PASSWORD)
        page.click("#login-submit")
        expect(page.locator("#whoami")).to_contain_text(username)
        expect(page.locator("#whoami")).to_contain_text("aggregator")
        expect(page.locator(f'#session-select option[value="{sid}"]')).to_have_count(1)
        page.select_option("#session-select", str(sid))
        expect(page.locator("#session-info")).to_contain_text("tso_only")
        return page

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors
        assert not self.foreign, f"the page asked other hosts: {self.foreign}"


def _shot(page: Any, name: str) -> None:
    """A full-page screenshot into $TSODSO_SCREENSHOTS, when set."""
    folder = os.environ.get("TSODSO_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"platform-{name}.png"), full_page=True)


def _row(page: Any, offer_id: str) -> Any:
    return page.locator(f'#offers-table tr[data-offer-id="{offer_id}"]')


def _assert_b_is_invisible(page: Any) -> None:
    html = page.content()
    assert B_OFFER not in html
    assert B_DER not in html


# ------------------------------------------------------------------------------ tests
def test_an_aggregator_offers_revises_and_withdraws_in_the_browser(browser, service,
                                                                   market, system):
    from playwright.sync_api import expect

    (der, p_max), (other, _) = _demand_response(system, AGG_A)[:2]
    view = Page(browser, service)
    page = view.login(AGG_A, market["sid"])
    expect(page.locator("#session-info")).to_contain_text("open")

    # an offer: one step, the DER's whole rating at 30 $/MWh
    page.fill("#offer-id", "a-offer-1")
    page.fill("#offer-der", der)
    expect(page.locator("#steps tr")).to_have_count(1)
    page.locator("#steps .step-quantity").fill(repr(p_max))
    page.locator("#steps .step-price").fill("30")
    page.click("#offer-submit")
    row = _row(page, "a-offer-1")
    expect(row).to_be_visible()
    expect(row.locator(".status")).to_have_text("active")
    expect(row.locator(".revision")).to_have_text("1")
    expect(row).to_contain_text(der)
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#offer-id")).to_have_value("")  # the form is ready for the next
    expect(page.locator("#der-hint")).to_contain_text(der)  # the DERs already offered
    _assert_b_is_invisible(page)

    # a refused offer: the service's message beside the form, nothing added
    page.fill("#offer-id", "a-bad")
    page.fill("#offer-der", other)
    page.locator("#steps .step-quantity").fill("-0.01")
    page.locator("#steps .step-price").fill("30")
    page.click("#offer-submit")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("422")
    expect(error).to_contain_text("steps.0.quantity_mw")
    expect(error).to_contain_text("greater than or equal to 0")
    assert page.eval_on_selector("#offer-form", "f => f.previousElementSibling.id") == "error"
    expect(page.locator('#offers-table tr[data-testid="offer-row"]')).to_have_count(1)
    expect(page.locator("#offer-id")).to_have_value("a-bad")  # kept for correcting
    _shot(page, "refused-offer")

    # a refusal by the platform's own checks (a DER of another aggregator) is shown too
    page.fill("#offer-der", B_DER)
    page.locator("#steps .step-quantity").fill("0.01")
    page.click("#offer-submit")
    expect(error).to_contain_text("der_id")
    expect(error).to_contain_text("portfolio")
    expect(page.locator('#offers-table tr[data-testid="offer-row"]')).to_have_count(1)

    # revise: two steps (add a step), then revision 2
    row.get_by_role("button", name="Revise offer a-offer-1").click()
    expect(error).to_be_hidden()
    expect(page.locator("#offer-id")).to_be_disabled()
    expect(page.locator("#offer-der")).to_have_value(der)
    expect(page.locator("#steps .step-quantity")).to_have_value(repr(p_max))
    page.click("#add-step")
    page.click("#add-step")
    expect(page.locator("#steps tr")).to_have_count(3)
    page.get_by_role("button", name="Remove step 3").click()
    quantities, prices = page.locator("#steps .step-quantity"), page.locator("#steps .step-price")
    quantities.nth(0).fill(repr(p_max / 2))
    quantities.nth(1).fill(repr(p_max / 2))
    prices.nth(1).fill("45")
    page.fill("#offer-max", "0.05")  # one cap for every period
    page.click("#offer-submit")
    expect(row.locator(".revision")).to_have_text("2")
    expect(row).to_contain_text("@ 45 $/MWh")
    expect(row).to_contain_text("capped per period")
    expect(error).to_be_hidden()
    expect(page.locator("#offer-id")).to_be_enabled()

    # withdraw (after confirming)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Withdraw offer a-offer-1").click()
    expect(row.locator(".status")).to_have_text("withdrawn")
    expect(row.get_by_role("button")).to_have_count(0)
    _shot(page, "withdrawn-offer")
    _assert_b_is_invisible(page)

    # logging out forgets the token
    page.click("#logout")
    expect(page.locator("#login-form")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('tsodso.token')") is None
    view.close()


def test_after_clearing_the_page_shows_own_results_and_charts(browser, service, market,
                                                              system):
    from playwright.sync_api import expect

    der, p_max = _demand_response(system, AGG_A)[0]
    sid = market["sid"]
    with _client(service, AGG_A) as a:
        a.post(f"/api/sessions/{sid}/offers", json={
            "offer_id": "a-cleared", "der_id": der,
            "steps": [{"quantity_mw": p_max, "price_per_mwh": 30}]}).raise_for_status()
    view = Page(browser, service)
    page = view.login(AGG_A, sid)
    expect(_row(page, "a-cleared")).to_be_visible()
    expect(page.locator("#results")).to_be_hidden()

    closed = market["mo"].post(f"/api/sessions/{sid}/close", params={"wait": "true"})
    assert closed.raise_for_status().json()["state"] == "cleared"

    # the page reads an open session again by itself and finds it cleared
    results = page.locator("#results")
    expect(results).to_be_visible(timeout=30_000)
    expect(page.locator("#session-info")).to_contain_text("cleared")
    expect(page.locator(f'#session-select option[value="{sid}"]')).to_contain_text("cleared")
    expect(page.locator("#offer-section")).to_be_hidden()
    awards = page.locator("#awards-table tbody tr")
    expect(awards).to_have_count(24)  # one per period of the session
    expect(awards.first).to_contain_text(der)
    expect(page.locator("#statements-table")).to_contain_text(f"aggregator:{AGG_A}")
    expect(page.locator("#activations-table")).to_contain_text("No activations")
    expect(page.locator("#charts")).to_be_visible()
    expect(page.locator("#chart-grid-prices.js-plotly-plot svg.main-svg").first).to_be_visible()
    expect(page.locator("#feeder-select")).to_have_value("case33bw@9")  # its DER's feeder
    expect(page.locator("#chart-dlmp .gtitle")).to_contain_text("case33bw@9")
    page.select_option("#feeder-select", "case33bw@13")
    expect(page.locator("#chart-dlmp .gtitle")).to_contain_text("case33bw@13")
    assert page.locator("#chart-dlmp .heatmaplayer, #chart-dlmp .hm").count() > 0
    _shot(page, "results")
    _assert_b_is_invisible(page)
    view.close()

    # without Plotly the results are there and the charts section is not
    plain = Page(browser, service, block="/static/plotly.min.js")
    page = plain.login(AGG_A, sid)
    expect(page.locator("#awards-table tbody tr")).to_have_count(24)
    expect(page.locator("#charts")).to_be_hidden()
    plain.errors = [e for e in plain.errors if "plotly" not in e.lower()]
    plain.close()

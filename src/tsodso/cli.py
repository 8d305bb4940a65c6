"""The ``tsodso`` command line: ``run``, ``show``, ``log``, ``compare``, ``schemes``,
``scenarios``, ``inspect``, ``schema``, ``export`` and the single-model commands.

Every command takes ``--json`` for machine-readable output. Errors print one line and exit
with status 1 (2 for usage errors); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from tsodso.errors import TsodsoError, ValidationError
from tsodso.resources import check_periods

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="tsodso: TSO-DSO coordination with distributed energy resources.",
    pretty_exceptions_enable=False,
)
console = Console(width=max(132, shutil.get_terminal_size((132, 24)).columns))
_state = {"debug": False, "quiet": False, "verbose": False}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars and no "
                                                            "explanatory footnotes.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print each "
                                                                  "scheme's costs per party "
                                                                  "and its money flows.")
                       ] = False,
) -> None:
    if quiet and verbose:
        typer.echo("error: give --quiet or --verbose, not both", err=True)
        raise typer.Exit(1)
    _state.update(debug=debug, quiet=quiet, verbose=verbose)


@contextmanager
def _progress(json_out: bool = False) -> Iterator[None]:
    """Progress bars on stderr for the work inside, when stderr is a terminal and neither
    ``--json`` nor ``--quiet`` was given (piped output and JSON stay clean)."""
    from tsodso import progress

    if json_out or _state["quiet"] or not sys.stderr.isatty():
        yield
        return
    with progress.RichProgress() as bars, progress.reporting(bars):
        yield


def _guard(func: Callable[[], Any]) -> Any:
    """Run ``func``; turn tsodso errors into one clear line and exit status 1."""
    try:
        return func()
    except (TsodsoError, KeyError, OSError) as err:
        if _state["debug"]:
            raise
        message = str(err).strip("'\"")
        if isinstance(err, ValidationError) and len(err.issues) > 1:
            message = f"{err.issues[0]} (+{len(err.issues) - 1} more; --debug lists them)"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1) from None


def _finite(value: Any) -> Any:
    """JSON has no infinity or NaN: such values are printed as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _emit_json(data: Any) -> None:
    typer.echo(json.dumps(_finite(data), indent=2, default=str, allow_nan=False))


def _summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"{summary['name']}", show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        ("transmission buses / branches / generators",
         f"{summary['buses']} / {summary['branches']} / {summary['generators']}"),
        ("feeders (buses, lines)",
         f"{summary['feeders']} ({summary['feeder_buses']}, {summary['feeder_lines']})"),
        ("DERs / aggregators", f"{summary['ders']} / {summary['aggregators']}"),
        ("total load", f"{summary['total_load_mw']:.3f} MW, {summary['total_load_mvar']:.3f} MVAr"),
        ("  of which on feeders", f"{summary['feeder_load_mw']:.3f} MW"),
        ("generation capacity", f"{summary['gen_capacity_mw']:.3f} MW"),
        ("periods", f"{summary['periods']} x {summary['period_hours']:g} h"),
        ("market rules", summary["rules"]),
    ]
    for kind, mw in sorted(summary["der_capacity_mw"].items()):
        rows.append((f"DER {kind}", f"{mw:.3f} MW"))
    for label, value in rows:
        table.add_row(label, value)
    return table


@app.command()
def scenarios(json_out: JsonOpt = False) -> None:
    """List the built-in scenarios with a one-line description."""
    from tsodso.scenarios import builtin_scenarios

    found = _guard(builtin_scenarios)
    if json_out:
        _emit_json(found)
        return
    table = Table("scenario", "description")
    for name, text in found.items():
        table.add_row(name, text)
    console.print(table)


#: The rules ``tsodso rules`` tabulates, with short headings.
RULE_COLUMNS = {"era": "era", "min_offer_mw": "min offer MW",
                "aggregation_allowed": "pooling", "dr_export_ban": "DR export ban",
                "storage_as": "storage as", "der_settlement": "DER price",
                "zonal_settlement_below_mw": "zonal below MW", "v2g_allowed": "V2G",
                "curtailment_compensation": "curtailment paid"}


@app.command()
def rules(
    name: Annotated[str | None, typer.Argument(help="One preset (default: all).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Market-rule presets: each market before FERC Order 2222 (its name) and in its Order
    2222 design (NAME-2222; EU: eu and eu-ebgl), every value with its source."""
    from tsodso.rules import PRESETS, get_rules

    chosen = ({name: _guard(lambda: get_rules(name))} if name is not None
              else dict(PRESETS))
    data = {"presets": {k: {f: v for f, v in r.to_dict().items() if f != "name"}
                        for k, r in chosen.items()}}
    if json_out:
        _emit_json(data)
        return
    table = Table("preset", *RULE_COLUMNS.values(), title="market-rule presets",
                  box=box.SIMPLE_HEAD)
    table.add_column("DSO market")
    for k, r in chosen.items():
        loc = r.local
        local = (f"{loc.min_offer_mw:g} MW{' pooled' if loc.aggregation_allowed else ''}; "
                 f"{', '.join(loc.energy_kinds) or 'none'}; Q "
                 f"{'paid' if loc.reactive_paid else 'grid code'}")
        table.add_row(k, *(_default_text(getattr(r, f)) for f in RULE_COLUMNS), local)
    console.print(table)
    if name is not None:
        r = chosen[name]
        console.print(r.description)
        for line in r.sources:
            console.print(f"  - {line}")
        console.print("DSO's local market:")
        for line in r.local.sources:
            console.print(f"  - {line}")
    else:
        console.print("tsodso rules NAME shows a preset's sources; --json lists them all.")


def _first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, on one line, without RST
    markup."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    match = re.match(r"(.+?[.!?])(\s|$)", paragraph)
    return (match.group(1) if match else paragraph).replace("``", "")


def _scheme_catalogue() -> dict[str, Any]:
    """Every scheme: one-line description, options (name, default, type, whether ``--set``
    sets it) and what crosses the TSO-DSO boundary (``VISIBILITY``)."""
    from tsodso.coordination import SCHEMES, VISIBILITY

    return {name: {"description": _first_sentence(func.__doc__),
                   "options": _option_specs(name),
                   "tso_sees": VISIBILITY[name]["tso_sees"],
                   "dso_sees": VISIBILITY[name]["dso_sees"],
                   "messages": list(VISIBILITY[name]["messages"])}
            for name, func in SCHEMES.items()}


def _default_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


@app.command()
def schemes(json_out: JsonOpt = False) -> None:
    """List the coordination schemes: what each does, its options (set them with run --set
    SCHEME.OPTION=VALUE) and what the TSO and a DSO see of each other."""
    found = _guard(_scheme_catalogue)
    if json_out:
        _emit_json(found)
        return
    table = Table("scheme", "what it does; options (run --set SCHEME.OPTION=VALUE); what "
                  "crosses the TSO-DSO boundary", box=box.SIMPLE_HEAD, show_lines=True)
    for name, info in found.items():
        options = ", ".join(f"{o['name']}={_default_text(o['default'])} ({o['type']})"
                            for o in info["options"] if o["settable"]) or "none"
        table.add_row(Text(name, style="bold"), Text("\n".join([
            info["description"], f"options: {options}", f"TSO sees: {info['tso_sees']}",
            f"DSO sees: {info['dso_sees']}", f"messages: {', '.join(info['messages'])}"])))
    console.print(table)
    console.print("Every scheme also takes bus= (a tsodso.actors.MessageBus) from Python; "
                  "run --out logs every message in DIR/log.sqlite. admm's executor and "
                  "keep_solvers follow --workers, --scheduler and --low-memory; centralized's "
                  "forecast is a System, given from Python. --json lists every option.")


@app.command()
def inspect(
    spec: Annotated[str, typer.Argument(help="Scenario name or file, matpower:NAME, "
                                             "pglib:NAME, simbench:CODE, .m file or folder.")],
    json_out: JsonOpt = False,
) -> None:
    """Counts, total load and generation capacity, DER capacity by kind and feeder."""
    from tsodso.io import load

    summary = _guard(lambda: load(spec).summary())
    if json_out:
        _emit_json(summary)
        return
    console.print(_summary_table(summary))
    if summary["defaults_filled"]:
        console.print("defaults filled (columns the input did not give): " + ", ".join(
            f"{k} = {v}" for k, v in summary["defaults_filled"].items()))
    if summary["der_capacity_by_feeder_mw"]:
        kinds = sorted(summary["der_capacity_mw"])
        table = Table("feeder", *[f"{k} MW" for k in kinds], "PV+wind % of peak",
                      title="DER capacity by feeder")
        for fid, caps in summary["der_capacity_by_feeder_mw"].items():
            pen = summary["penetration_pct"].get(fid)
            table.add_row(fid, *[f"{caps.get(k, 0.0):.3f}" for k in kinds],
                          "-" if pen is None else f"{pen:.1f}")
        console.print(table)


@app.command()
def schema(
    table: Annotated[str | None, typer.Argument(help="Table name; all tables if omitted.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The declared columns of every component table (dtype, unit, default, description)."""
    import pandas as pd

    from tsodso.model import ALL_SCHEMAS

    def frame() -> pd.DataFrame:
        if table is not None and table not in ALL_SCHEMAS:
            raise TsodsoError(f"unknown table '{table}'; tables: {', '.join(ALL_SCHEMAS)}")
        names = [table] if table else list(ALL_SCHEMAS)
        return pd.concat([ALL_SCHEMAS[n].to_frame() for n in names], ignore_index=True)

    df = _guard(frame)
    if json_out:
        _emit_json(json.loads(df.to_json(orient="records")))
        return
    out = Table(*df.columns)
    for row in df.astype(str).itertuples(index=False):
        out.add_row(*row)
    console.print(out)


@app.command()
def export(
    spec: Annotated[str, typer.Argument(help="What to load (as for inspect).")],
    out: Annotated[str, typer.Argument(help="Folder to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "parquet",
    json_out: JsonOpt = False,
) -> None:
    """Write a system as system.yaml plus one CSV or Parquet file per table."""
    from tsodso.io import load
    from tsodso.io.store import write_system

    path = _guard(lambda: write_system(load(spec), out, fmt))  # type: ignore[arg-type]
    if json_out:
        _emit_json({"manifest": str(path)})
    else:
        console.print(f"wrote {path}")


@app.command("tso-opf")
def tso_opf(
    case: Annotated[str, typer.Argument(help="matpower:NAME, pglib:NAME, a .m file, or a "
                                             "scenario (built-in name, .yaml, folder).")],
    periods: Annotated[int | None, typer.Option(help="Periods to clear, 1 .. 35136 (default: "
                                                     "the scenario's horizon, which it may not "
                                                     "exceed; 1 for a case).")] = None,
    reserves: Annotated[bool, typer.Option("--reserves", help="Co-optimise reserves.")] = False,
    rules: Annotated[str | None, typer.Option(help="Participation rules preset: pjm, nyiso, "
                                                   "ercot, caiso, eu, custom.")] = None,
    losses: Annotated[bool, typer.Option("--losses", help="Price marginal losses with loss "
                                                          "factors (lmp_loss).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Clear the TSO market: multi-period DC-OPF with decomposed LMPs."""
    from tsodso.io import load
    from tsodso.rules import get_rules
    from tsodso.tso import TsoOptions, clear_tso_market

    def work() -> tuple[Any, float]:
        t0 = time.perf_counter()
        check_periods(periods, name="--periods")
        system = load(case, n_periods=periods)
        load_s = time.perf_counter() - t0
        options = TsoOptions(periods=periods, reserves=reserves, losses=losses,
                             rules=get_rules(rules) if rules else None)
        result = clear_tso_market(system, options)
        result.timings = {"load_s": load_s, **result.timings,
                          "total_s": time.perf_counter() - t0}
        return result, load_s

    result, _ = _guard(work)
    if json_out:
        _emit_json(result.to_json())
        return
    lmp = result.lmp
    console.print(f"[bold]{case}[/bold]: {result.status.value}, objective "
                  f"{result.objective:,.2f} $ over {len(lmp)} period(s)")
    table = Table("bus", "LMP min", "LMP max", "energy", "congestion", "loss",
                  title="LMP ($/MWh), components averaged over the periods")
    show = lmp.columns[:: max(1, len(lmp.columns) // 20)]
    for bus in show:
        table.add_row(str(bus), f"{lmp[bus].min():.2f}", f"{lmp[bus].max():.2f}",
                      f"{result.lmp_energy[bus].mean():.2f}",
                      f"{result.lmp_congestion[bus].mean():.2f}",
                      f"{result.lmp_loss[bus].mean():.2f}")
    console.print(table)
    if len(show) < len(lmp.columns):
        console.print(f"({len(show)} of {len(lmp.columns)} buses shown; --json gives all)")
    console.print(f"binding branches: {result.binding_branches or 'none'}")
    if losses:
        console.print(f"losses: {result.losses_mw.mean():.2f} MW on average "
                      f"({result.loss_iterations} loss-factor updates)")
    for note in result.notes:
        console.print(f"note: {note}")
    _print_warnings(f"tso-opf {case}", result.shortfalls.warnings())
    if len(result.excluded):
        console.print(f"{len(result.excluded)} DERs kept out of the market by the rules "
                      f"(--json lists them with reasons)")
    t = result.timings
    console.print(f"timings: load {t['load_s']:.3f} s, build {t['build_s']:.3f} s, "
                  f"solve {t['solve_s']:.3f} s, total {t['total_s']:.3f} s")


FeederArg = Annotated[str, typer.Argument(help="matpower:case33bw, a MATPOWER file, or "
                                                "SCENARIO:FEEDER_ID (e.g. default:case33bw@9).")]


@app.command()
def pf(feeder: FeederArg, json_out: JsonOpt = False) -> None:
    """AC power flow of a feeder's base case (loads as in the tables, no DER)."""
    from tsodso.io import load_feeder
    from tsodso.powerflow import power_flow

    def work() -> dict[str, Any]:
        system, fid = load_feeder(feeder)
        res = power_flow(system, fid).check()
        vmin, vmax = res.vmin(), res.vmax()
        return {
            "feeder": fid,
            "p_loss_kw": float(res.p_loss_mw.iloc[0] * 1e3),
            "q_loss_kvar": float(res.q_loss_mvar.iloc[0] * 1e3),
            "vmin": float(vmin.value), "vmin_bus": int(vmin.bus_id),
            "vmax": float(vmax.value), "vmax_bus": int(vmax.bus_id),
            "voltages": {str(b): float(v) for b, v in res.vm_pu.iloc[0].items()},
            "loading": {str(k): float(v) for k, v in res.loading_pct.iloc[0].items()},
            "substation_p_mw": float(res.substation_p_mw.iloc[0]),
        }

    out = _guard(work)
    if json_out:
        _emit_json(out)
        return
    console.print(f"[bold]{out['feeder']}[/bold]: losses {out['p_loss_kw']:.2f} kW, "
                  f"{out['q_loss_kvar']:.2f} kVAr; Vmin {out['vmin']:.4f} pu at bus "
                  f"{out['vmin_bus']}, Vmax {out['vmax']:.4f} pu at bus {out['vmax_bus']}; "
                  f"substation {out['substation_p_mw']:.3f} MW")


def _interface_price(system: Any, fid: str, periods: int) -> tuple[Any, float, str]:
    """Default interface price: the file's slack-generator cost for a stand-alone feeder,
    the TSO market's LMP at the interface bus for a scenario feeder."""
    import numpy as np

    if len(system.grid.buses) == 0:
        from tsodso.io.matpower import read_case

        case = read_case(system.meta["source"])
        ref = case.bus[case.bus[:, 1] == 3, 0][0]
        row = np.flatnonzero(case.gen[:, 0] == ref)
        if case.gencost is None or not len(row):
            return np.zeros(periods), 0.0, "no cost in the file: 0 $/MWh"
        gc = case.gencost[row[0]]
        n = int(gc[3])
        coef = list(gc[4:4 + n])[::-1] + [0.0, 0.0, 0.0]  # c0, c1, c2
        return (np.full(periods, coef[1]), float(coef[2]),
                f"slack generator cost of the file ({coef[1]:g} $/MWh)")
    from tsodso.tso import TsoOptions, clear_tso_market

    tso = clear_tso_market(system, TsoOptions(periods=periods))
    bus = int(system.feeders.set_index("feeder_id").interface_bus[fid])
    return tso.lmp[bus].to_numpy(), 0.0, f"TSO LMP at interface bus {bus}"


@app.command("dso-opf")
def dso_opf(
    feeder: FeederArg,
    price: Annotated[float | None, typer.Option(help="Interface price, $/MWh (all "
                                                     "periods).")] = None,
    price_file: Annotated[str | None, typer.Option(help="UTF-8 CSV with exactly one price per "
                                                        "period ($/MWh): one column, or a "
                                                        "header with a 'price' column.")] = None,
    periods: Annotated[int | None, typer.Option(help="Periods to solve, 1 .. 35136 (default: "
                                                     "the scenario's horizon, which it may not "
                                                     "exceed; 1 for a case).")] = None,
    formulation: Annotated[str, typer.Option(help="soc or lindist")] = "soc",
    json_out: JsonOpt = False,
) -> None:
    """Feeder OPF (SOC branch flow or LinDistFlow) with DLMPs for P and Q."""
    import numpy as np

    from tsodso.dso import Boundary, DsoOptions, solve_dso
    from tsodso.io import load_feeder
    from tsodso.io.prices import read_prices

    def work() -> tuple[Any, str]:
        t0 = time.perf_counter()
        _check_dso_options(price, price_file, periods, formulation)
        system, fid = load_feeder(feeder, n_periods=periods)
        T = check_periods(periods, system.n_periods, f"'{feeder}'", "--periods")
        c2 = 0.0
        if price_file is not None:
            series, source = read_prices(price_file, T), price_file
        elif price is not None:
            series, source = np.full(T, price), f"--price {price:g}"
        else:
            series, c2, source = _interface_price(system, fid, T)
        load_s = time.perf_counter() - t0
        res = solve_dso(system, fid, Boundary(price=series, price_c2=c2),
                        DsoOptions(formulation=formulation, periods=T))  # type: ignore[arg-type]
        res.timings = {"load_s": load_s, **res.timings, "total_s": time.perf_counter() - t0}
        return res, source

    res, source = _guard(work)
    if json_out:
        out = res.to_json()
        out["interface_price_source"] = source
        _emit_json(out)
        return
    console.print(f"[bold]{feeder}[/bold] ({formulation}): {res.status.value}, objective "
                  f"{res.objective:,.2f} $ over {len(res.dlmp_p)} period(s); price: {source}")
    if res.prices_valid:
        console.print(_dlmp_table(res))
    console.print(f"interface {res.interface_p_mw.sum():.3f} MW summed over periods, losses "
                  f"{res.losses_mw.sum():.4f} MW; SOC gap {res.soc_gap_max:.2e}"
                  f"{' (tightened)' if res.tightened else ''}")
    if res.ac_check:
        ac = res.ac_check
        console.print(f"AC check: voltage error {ac['max_voltage_error_pu']:.2e} pu, flow error "
                      f"{ac['max_flow_error_pct']:.2e} %, {ac['violations']} violation(s) "
                      f"(element x period), {ac['not_converged_periods']} period(s) not "
                      "converged")
    _print_warnings(f"dso-opf {feeder}", res.shortfalls.warnings())
    if not res.prices_valid:
        console.print(f"[yellow]warning[/yellow]: DLMPs withheld: the result is "
                      f"{res.status.value}, so its duals are not prices")


def _dlmp_table(res: Any) -> Table:
    """DLMPs and their parts at the period of the highest price."""
    table = Table("bus", "DLMP P", "energy", "loss", "congestion", "voltage", "DLMP Q",
                  title="DLMPs, period of the highest price ($/MWh, $/MVArh)")
    t = int(res.dlmp_p.max(axis=1).to_numpy().argmax())
    for bus in res.dlmp_p.columns:
        c = {k: v.loc[t, bus] for k, v in res.dlmp_p_components.items()}
        table.add_row(str(bus), f"{res.dlmp_p.loc[t, bus]:.3f}", f"{c['energy']:.3f}",
                      f"{c['loss']:.3f}", f"{c['congestion']:.3f}", f"{c['voltage']:.3f}",
                      f"{res.dlmp_q.loc[t, bus]:.3f}")
    return table


def _print_warnings(who: str, warnings: list[str]) -> None:
    """One yellow ``warning`` line per thing a result cost besides production."""
    for text in warnings:
        console.print(f"[yellow]warning[/yellow] ({who}): {text}")


@app.command("hosting-capacity")
def hosting_capacity_cmd(
    feeder: FeederArg,
    kind: Annotated[str, typer.Option(help="pv or load")] = "pv",
    bus: Annotated[list[int] | None, typer.Option("--bus", help="Bus to study (repeat for "
                                                                "several; default all but "
                                                                "the root).")] = None,
    report: Annotated[str | None, typer.Option("--report", metavar="FILE.html",
                                               help="Also write a self-contained HTML page "
                                                    "with the chart (plot extra).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Largest extra PV (or load) each bus can take without violations (AC-verified)."""
    from tsodso.dso.hosting_capacity import hosting_capacity
    from tsodso.io import load_feeder

    if report is not None:
        _guard(_check_plotting)
    fid = ""

    def work() -> Any:
        nonlocal fid
        system, fid = load_feeder(feeder)
        return hosting_capacity(system, fid, kind, buses=bus)  # type: ignore[arg-type]

    with _progress(json_out):
        table = _guard(work)
    if report is not None:
        written = _guard(lambda: _hosting_report(table, fid, kind, feeder, report))
    if json_out:
        _emit_json({"kind": kind, "buses": table.to_dict(orient="records")})
        if report is not None:
            typer.echo(f"report: {written}", err=True)
        return
    out = Table("bus", f"hosting {kind} MW", "OPF estimate MW", "limit", "period",
                title=f"hosting capacity ({kind})")
    for row in table.itertuples():
        out.add_row(str(row.bus_id), f"{row.hosting_mw:.3f}", f"{row.opf_mw:.3f}",
                    str(row.limit), str(row.period))
    console.print(out)
    if report is not None:
        console.print(f"report: {written}")


def _hosting_report(table: Any, feeder_id: str, kind: str, spec: str, out: str) -> Path:
    """The hosting-capacity chart and table as one self-contained HTML page."""
    import html as _html

    from tsodso.report import charts
    from tsodso.report.html import figure_html, page

    rows = "".join(f"<tr><td>{r.bus_id}</td><td>{r.hosting_mw:.3f}</td>"
                   f"<td>{r.opf_mw:.3f}</td><td>{_html.escape(str(r.limit))}</td>"
                   f"<td>{r.period}</td></tr>" for r in table.itertuples())
    body = ("<section><h2>Hosting capacity</h2>"
            + figure_html(charts.hosting_capacity(table, feeder_id, kind), "hosting")
            + '<div class="wide"><table><tr><th>bus</th><th>hosting (MW, AC-verified)</th>'
              "<th>OPF estimate (MW)</th><th>first limit</th><th>period</th></tr>"
            + rows + "</table></div></section>")
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page(f"Hosting capacity of {feeder_id}", f"{kind}, from {spec}",
                             "largest extra size each bus takes before a limit breaks in an "
                             "AC power flow", body), encoding="utf-8")
    except OSError as err:
        raise TsodsoError(f"{path}: cannot write the report ({err.strerror or err})") from None
    return path


def _check_dso_options(price: float | None, price_file: str | None, periods: int | None,
                       formulation: str) -> None:
    """``dso-opf``'s options, checked before anything is loaded."""
    from tsodso.options import require_choice

    check_periods(periods, name="--periods")
    require_choice("--formulation", formulation, ("soc", "lindist"))
    if price is not None and price_file is not None:
        raise TsodsoError("give --price or --price-file, not both")
    if price is not None and not math.isfinite(price):
        raise TsodsoError(f"--price must be a finite number of $/MWh, got {price}")


def _scheme_names(schemes: list[str] | None, workers: int | None, scheduler: str | None,
                  low_memory: bool) -> list[str]:
    """The schemes to run (default all), after checking the run options: known schemes,
    none twice, and the Dask options (which only the admm scheme uses) valid and needed."""
    from tsodso.coordination import check_scheme_names
    from tsodso.parallel import check_executor_options

    names = check_scheme_names(schemes)
    check_executor_options(workers, scheduler)
    if "admm" not in names and (workers is not None or scheduler is not None or low_memory):
        raise TsodsoError("--workers, --scheduler and --low-memory apply to the admm scheme "
                          "only: add --scheme admm or drop them")
    return names


#: Scheme options the command line does not set, and why.
_NOT_FROM_CLI = {
    "executor": "admm's executor follows --workers / --scheduler",
    "keep_solvers": "admm's solvers are freed by --low-memory",
    "bus": "run --out logs every scheme's messages in DIR/log.sqlite",
    "forecast": "a System: pass it from Python (tsodso.run_scheme)",
}


def _parse_int(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError("an integer")
    return int(text)


def _parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("a number") from None


def _parse_bool(text: str) -> bool:
    word = text.lower()
    if word in {"true", "1", "yes"}:
        return True
    if word in {"false", "0", "no"}:
        return False
    raise ValueError("true or false (also 1/0, yes/no)")


def _parse_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError("comma-separated numbers, e.g. 0.5,0.8,1.25,2") from None


#: How a ``--set`` value is read, by the option's annotated type.
_PARSERS: dict[str, Callable[[str], Any]] = {
    "int": _parse_int, "float": _parse_float, "bool": _parse_bool,
    "tuple[float, ...]": _parse_floats,
}


def _option_specs(name: str) -> list[dict[str, Any]]:
    """Scheme ``name``'s options: name, default, annotated type and whether ``--set`` can
    set it (with the reason when it cannot), from the scheme function's signature."""
    import inspect as _inspect

    from tsodso.coordination import SCHEMES, scheme_options

    params = _inspect.signature(SCHEMES[name]).parameters
    specs = []
    for option in scheme_options(name):
        param = params[option]
        default = None if param.default is param.empty else param.default
        kind = param.annotation
        if kind is param.empty:
            kind = type(default).__name__
        elif not isinstance(kind, str):
            kind = getattr(kind, "__name__", str(kind))
        settable = option not in _NOT_FROM_CLI and kind in _PARSERS
        specs.append({"name": option, "default": default, "type": kind,
                      "settable": settable,
                      "note": None if settable else _NOT_FROM_CLI.get(
                          option, f"a {kind} cannot be given as text")})
    return specs


def _scheme_settings(sets: list[str] | None, names: list[str]) -> dict[str, dict[str, Any]]:
    """``--set SCHEME.OPTION=VALUE`` items as options by scheme, each value read by its
    option's type and checked (``check_scheme_options``). Refuses, with one line, a
    malformed item, an unknown scheme or one not run, an unknown option or one the command
    line does not set, an option given twice and a malformed or invalid value."""
    from tsodso.coordination import SCHEMES, check_scheme_options

    settings: dict[str, dict[str, Any]] = {}
    for item in sets or []:
        key, sep, text = item.partition("=")
        scheme, dot, option = key.strip().partition(".")
        if not sep or not dot or not scheme or not option:
            raise TsodsoError(f"--set '{item}': expected SCHEME.OPTION=VALUE, e.g. "
                              "admm.rho=10")
        if scheme not in SCHEMES:
            raise TsodsoError(f"--set {key}: unknown scheme '{scheme}'; schemes: "
                              f"{', '.join(SCHEMES)}")
        if scheme not in names:
            raise TsodsoError(f"--set {key}: scheme '{scheme}' is not run; add --scheme "
                              f"{scheme} or drop the --set")
        specs = {spec["name"]: spec for spec in _option_specs(scheme)}
        valid = [n for n, spec in specs.items() if spec["settable"]]
        if option not in specs:
            raise TsodsoError(f"--set {key}: scheme '{scheme}' has no option '{option}'; "
                              f"its options: {', '.join(valid) or 'none'}")
        spec = specs[option]
        if not spec["settable"]:
            raise TsodsoError(f"--set {key}: not settable from the command line "
                              f"({spec['note']}); its options: {', '.join(valid) or 'none'}")
        if option in settings.get(scheme, {}):
            raise TsodsoError(f"--set {key} is given twice")
        try:
            value = _PARSERS[spec["type"]](text.strip())
        except ValueError as err:
            raise TsodsoError(f"--set {key}: {text.strip()!r} is not {err}") from None
        try:
            check_scheme_options(scheme, {option: value})
        except TsodsoError as err:
            raise TsodsoError(f"--set {key}: {err}") from None
        settings.setdefault(scheme, {})[option] = value
    return settings


def _coordination_system(scenario: str) -> Any:
    """The scenario, which must have feeders for the coordination schemes."""
    from tsodso.io import load

    system = load(scenario)
    if not system.feeder_ids:
        raise TsodsoError(f"{scenario} has no feeders: coordination schemes need a scenario "
                          "with feeders (see tsodso scenarios)")
    return system


def _run_schemes(scenario: str, schemes: list[str] | None, workers: int | None,
                 scheduler: str | None, low_memory: bool = False,
                 system: Any = None, sets: list[str] | None = None) -> dict[str, Any]:
    """Run the schemes and return their comparison (see ``comparison_rows``)."""
    from tsodso.coordination.run_folder import comparison_rows

    names = _scheme_names(schemes, workers, scheduler, low_memory)
    settings = _scheme_settings(sets, names)
    system, outcomes = _solve_schemes(scenario, names, workers, scheduler, low_memory,
                                      system, settings)
    return comparison_rows(outcomes, scenario, system.description)


def _solve_schemes(scenario: str, schemes: list[str] | None, workers: int | None,
                   scheduler: str | None, low_memory: bool = False,
                   system: Any = None, settings: dict[str, dict[str, Any]] | None = None,
                   log: Any = None) -> tuple[Any, dict[str, Any]]:
    """The system and, in the order asked, each scheme's Outcome or its SolveError.

    ``settings`` are scheme options by scheme (see :func:`_scheme_settings`); with ``log``
    (a :class:`tsodso.actors.MessageLog`) every scheme logs its messages there, each through
    its own bus, else each scheme has its own in-memory log."""
    from tsodso.coordination import run_schemes
    from tsodso.parallel import InProcessExecutor, make_executor

    names = _scheme_names(schemes, workers, scheduler, low_memory)
    settings = settings or {}
    system = _coordination_system(scenario) if system is None else system
    # only admm uses the executor: no cluster is started or reached for the other schemes
    executor = (make_executor(workers, scheduler) if "admm" in names
                else InProcessExecutor())
    options = {name: dict(settings.get(name, {})) for name in names}
    if "admm" in names:
        options["admm"] = {"executor": executor, "keep_solvers": False if low_memory else None,
                           **options["admm"]}
    try:
        return system, run_schemes(system, names, options, log)
    finally:
        executor.close()


def _print_comparison(result: dict[str, Any]) -> None:
    table = Table(title=f"{result['scenario']}: coordination schemes", box=box.SIMPLE_HEAD,
                  collapse_padding=True, pad_edge=False)
    for head in ("scheme", "status", "total cost $"):  # never truncated
        table.add_column(head, no_wrap=True)
    for head in ("gap\n%", "V\nviol.", "I\nviol.", "PF\nfailed", "worst\nV pu", "shed\nMWh",
                 "EV unmet\nMWh", "curtail.\nMWh", "iter.", "messages", "wall\ns"):
        # numbers are never cut: a header may wrap, a value folds instead of an ellipsis
        table.add_column(head, justify="right", overflow="fold")
    for name, r in result["schemes"].items():
        if r["total_cost"] is None:  # no answer: see its note
            table.add_row(name, r["status"], *["-"] * 12)
            continue
        gap = r["gap_to_common_pct"]
        worst = r["violations"]["worst_voltage_pu"]
        table.add_row(name, r["status"], f"{r['total_cost']:,.2f}",
                      "-" if gap is None else f"{gap:.3f}", str(r["violations"]["voltage"]),
                      str(r["violations"]["thermal"]), str(r["violations"]["not_converged"]),
                      "-" if worst is None else f"{worst:.4f}", f"{r['shed_mwh']:.3f}",
                      f"{r['unmet_ev_mwh']:.3f}", f"{r['curtailed_mwh']:.3f}",
                      str(r["iterations"]), str(r["messages"]), f"{r['wall_s']:.1f}")
    console.print(table)
    for name, r in result["schemes"].items():
        _print_warnings(name, r["shortfalls"]["warnings"] if r["shortfalls"] else [])
        kept = r.get("kept_out") or {}
        if kept.get("ders"):
            parts = "; ".join(f"{g['market'].upper()} market: {g['ders']} "
                              f"({g['mw']:.3f} MW) {g['reason']}" for g in kept["by_reason"])
            takers = kept.get("price_takers") or {}
            console.print(f"[yellow]{name}[/yellow]: {kept['ders']} DER(s), "
                          f"{kept['mw']:.3f} MW, kept out of a market by its rules ({parts}); "
                          f"{takers.get('ders', 0)} ({takers.get('mw', 0.0):.3f} MW) admitted "
                          "by no market run as price-takers")
        for note in r["notes"]:
            console.print(f"[yellow]{name}[/yellow]: {note}")
    _print_tools(result)
    if _state["verbose"]:
        _print_money(result)
    if _state["quiet"]:
        return
    console.print("gap %: total cost above common's; "
                  "violations: bus x period (V) and line x period (I) beyond limits in an AC "
                  "power flow of each scheme's market dispatch, with the DSOs' tap changers "
                  "and capacitors where they set them, before any curtailment or shedding; PF "
                  "failed: feeder x period whose power flow did not converge (violations "
                  "unknown); costs: production cost of the corrected operation, including "
                  "shed load and unmet EV energy at the value of lost load.")


def _print_tools(result: dict[str, Any]) -> None:
    """One line per distinct set of DSO voltage tools, naming the schemes that had it."""
    lines: dict[str, list[str]] = {}
    for name, r in result["schemes"].items():
        tools = r.get("dso_tools")
        if not tools:
            continue
        q = tools["inverter_reactive"]
        text = (f"tap changers on {tools['tap_changers']} of {tools['feeders']} feeders, "
                f"{tools['capacitor_banks']} capacitor bank(s) ({tools['capacitor_mvar']:.2f} "
                f"MVAr), inverter reactive power of {q['ders']} DER(s) ({q['mva']:.2f} MVA, "
                f"{q['terms']})")
        lines.setdefault(text, []).append(name)
    for text, names in lines.items():
        console.print(f"DSO voltage tools ({', '.join(names)}): {text}")


def _print_money(result: dict[str, Any]) -> None:
    """Per scheme: the TSO's and each feeder's production cost, and who paid and was paid
    ($ over the horizon)."""
    for name, r in result["schemes"].items():
        money = r.get("money")
        if not money:
            continue
        table = Table(title=f"{name}: costs and money flows ($ over the horizon)",
                      box=box.SIMPLE_HEAD, show_header=True)
        table.add_column("party / flow", no_wrap=True)
        table.add_column("$", justify="right", no_wrap=True)
        table.add_row("TSO production cost", f"{money['tso_cost']:,.2f}")
        for feeder, cost in money["dso_costs"].items():
            table.add_row(f"feeder {feeder} production cost", f"{cost:,.2f}")
        table.add_row("consumers pay", f"{money['consumer_payments']:,.2f}")
        table.add_row("generators receive", f"{money['generator_revenues']:,.2f}")
        for agg, value in money["der_revenues"].items():
            table.add_row(f"DERs of {agg} receive", f"{value:,.2f}")
        for rent, value in money["rents"].items():
            table.add_row(f"{rent} rent", f"{value:,.2f}")
        console.print(table)


SchemeOpt = Annotated[list[str] | None, typer.Option("--scheme", help="Scheme to run "
                                                     "(repeat for several; default all).")]
WorkersOpt = Annotated[int | None, typer.Option(help="Dask LocalCluster workers for admm's "
                                                     "DSO subproblems, 1 .. the CPUs here (1: "
                                                     "in process).")]
SchedulerOpt = Annotated[str | None, typer.Option(help="Address [tcp://]HOST:PORT of an existing "
                                                       "Dask scheduler for admm (not with "
                                                       "--workers); 5 s to connect.")]
LowMemoryOpt = Annotated[bool, typer.Option(help="ADMM frees every feeder's solver after each "
                                            "solve (default: each process keeps solvers "
                                            "within 2 GB and frees the rest's).")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="SCHEME.OPTION=VALUE",
    help="A scheme option, e.g. admm.rho=10, hierarchical.max_iterations=1, "
         "local.levels=0.5,0.8,1.25,2 (repeat for several; tsodso schemes lists them).")]


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario or file.")] = "default",
    scheme: SchemeOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    low_memory: LowMemoryOpt = False,
    out: Annotated[str | None, typer.Option("--out", help="Write a run folder here (system, "
                                                          "options, every outcome, the "
                                                          "message log; read it with tsodso "
                                                          "show and tsodso log).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write --out into a non-empty folder "
                                                        "(replacing the run in it).")] = False,
    sets: SetOpt = None,
    report: Annotated[str | None, typer.Option("--report", metavar="FILE.html",
                                               help="Also write the run's HTML report "
                                                    "(needs the plot extra; see tsodso "
                                                    "report).")] = None,
    figures: FiguresOpt = None,
    offers: Annotated[str | None, typer.Option("--offers", metavar="FILE.json",
                                               help="Aggregators' offers to clear instead "
                                                    "of their DERs' standing offers (the "
                                                    "operator platform's format: tsodso "
                                                    "serve exports it with each cleared "
                                                    "session).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run coordination schemes on a scenario and compare them (all schemes by default)."""
    import tempfile

    if report is not None or figures is not None:
        _guard(_check_plotting)
    folder = out
    scratch = None
    charted = report is not None or figures is not None
    if charted and out is None:  # the report and figures read a run folder: a scratch one
        scratch = tempfile.TemporaryDirectory(prefix="tsodso-run-")
        folder = str(Path(scratch.name) / "run")
    try:
        system = None if offers is None else _guard(lambda: _offered_system(scenario, offers))
        with _progress(json_out):
            if folder is None:
                result = _guard(lambda: _run_schemes(scenario, scheme, workers, scheduler,
                                                     low_memory, system=system, sets=sets))
            else:
                result = _guard(lambda: _run_to_folder(scenario, scheme, workers, scheduler,
                                                       low_memory, folder, force, sets,
                                                       system))
        if report is not None:
            from tsodso.report import write_report

            written = _guard(lambda: write_report(folder, report))
        if figures is not None:
            from tsodso.report import write_figures

            drawn = _guard(lambda: write_figures(folder, figures))
    finally:
        if scratch is not None:
            scratch.cleanup()
    if json_out:
        _emit_json(result)
        if out is not None:
            typer.echo(f"run folder: {out}", err=True)
        if report is not None:
            typer.echo(f"report: {written}", err=True)
        if figures is not None:
            typer.echo(f"figures: {len(drawn)} files in {figures}", err=True)
        return
    console.print(f"[bold]{scenario}[/bold]: {result['description']}")
    _print_comparison(result)
    if out is not None:
        console.print(f"run folder: {out}")
    if report is not None:
        console.print(f"report: {written}")
    if figures is not None:
        console.print(f"figures: {len(drawn)} files in {figures}")


def _offered_system(scenario: str, offers: str) -> Any:
    """The scenario with the offers of ``offers`` (JSON) in place of the standing ones."""
    from tsodso.platform.offers import apply_offers, read_offers

    return apply_offers(_coordination_system(scenario), read_offers(offers))


def _check_plotting() -> None:
    """A clear error before anything runs when the plot extra is missing."""
    from tsodso.report.charts import plotly_modules

    plotly_modules()


FiguresOpt = Annotated[str | None, typer.Option(
    "--figures", metavar="DIR", help="Also write every chart as PNG and SVG into DIR "
                                     "(publication figures; needs Kaleido and Chrome or "
                                     "Chromium).")]


@app.command()
def operate(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario name or YAML file.")]
    = "default",
    scheme: Annotated[str, typer.Option(help="Coordination scheme of every stage.")] = "common",
    days: Annotated[int, typer.Option(help="Days to operate (the scenario's horizon must "
                                           "hold them).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the forecast errors.")] = 0,
    load_error: Annotated[float, typer.Option(help="Standard deviation of the relative load "
                                                   "forecast error (0.05 = 5 %).")] = 0.0,
    renewable_error: Annotated[float, typer.Option(
        help="Standard deviation of the relative PV and wind forecast error.")] = 0.0,
    out: Annotated[str | None, typer.Option(metavar="DIR", help="Operation folder (default "
                                            "operate-SCENARIO-SCHEME); an interrupted run "
                                            "resumes there.")] = None,
    show_plan: Annotated[bool, typer.Option("--plan", help="Print the execution schedule "
                                                           "and stop.")] = False,
    drop_der_schedules: Annotated[bool, typer.Option(
        "--drop-der-schedules", help="Drop the TSO's DER schedule message to the DSOs "
                                     "(tso_only, centralized): they cannot correct the "
                                     "schedules, and the violations that follow are "
                                     "reported.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Operate a scenario through day-ahead and real-time stages: day ahead clears the day
    on forecasts; real time re-clears the rest of the day every period with what happens
    now, carrying states of charge, and commits one period. Results are written step by
    step; the same command resumes an interrupted run."""
    from pathlib import Path

    from tsodso.operations import ForecastErrors, default_timeline, plan
    from tsodso.operations import operate as run_operation
    from tsodso.operations.run import check_days, periods_per_day

    system = _guard(lambda: _coordination_system(scenario))
    errors = _guard(lambda: ForecastErrors(load_error, renewable_error, seed))
    per_day = _guard(lambda: periods_per_day(system))
    dt = system.profiles.period_hours
    schedule = _guard(lambda: plan(default_timeline(dt, per_day), dt, per_day, days))
    _guard(lambda: check_days(system, days))
    if show_plan:
        if json_out:
            _emit_json({"plan": schedule.to_dict(orient="records")})
            return
        table = Table(*[str(c) for c in schedule.columns], title=f"plan: {scenario}, {days} "
                      "day(s)", box=box.SIMPLE_HEAD)
        for row in schedule.itertuples(index=False):
            table.add_row(*(f"{v:g}" if isinstance(v, float) else str(v) for v in row))
        console.print(table)
        return
    stem = Path(scenario).stem if scenario.endswith((".yaml", ".yml")) else scenario
    folder = out or f"operate-{stem}-{scheme}"
    with _progress(json_out):
        options = {"der_schedules_to_dso": False} if drop_der_schedules else {}
        op = _guard(lambda: run_operation(system, scheme, folder, errors=errors, days=days,
                                          scenario=scenario, options=options))
    steps = op.steps
    realised = steps.commits > 0
    data = {"folder": str(op.folder), "complete": op.complete,
            "steps": steps.to_dict(orient="records"),
            "realised_violations": int(steps.loc[realised, "violations"].sum()),
            "delivered_violations": int(steps.loc[realised, "delivered_violations"].sum()),
            "shed_mwh_in_runs": float(steps.shed_mwh.sum())}
    if json_out:
        _emit_json(data)
        return
    table = Table("step", "stage", "period", "status", "run cost $", "violations",
                  "delivered violations", "wall s", title=f"operate {scenario} under {scheme}",
                  box=box.SIMPLE_HEAD)
    for r in steps.itertuples(index=False):
        table.add_row(str(r.step), r.stage, str(r.first_period), r.status,
                      f"{r.run_cost:,.2f}", str(r.violations), str(r.delivered_violations),
                      f"{r.wall_s:.1f}")
    console.print(table)
    console.print(f"operation folder: {op.folder} ({len(steps)} of {len(op.plan)} steps); "
                  f"violations in the realised periods: {data['realised_violations']} in the "
                  f"market's schedules, {data['delivered_violations']} in what the feeders "
                  "delivered")


def _period_list(option: str, text: str) -> list[int]:
    """Periods written as ``10-12`` (inclusive) or ``10,11,12`` (or both: ``3,10-12``)."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise TsodsoError(f"{option}: periods are written 10-12 or 10,11,12; got {text!r}")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if last < first:
            raise TsodsoError(f"{option}: {part.strip()!r} runs backwards")
        out.extend(range(first, last + 1))
    return out


def _refuse(message: str) -> None:
    """Raise ``message`` as a :class:`TsodsoError` (for :func:`_guard` to print)."""
    raise TsodsoError(message)


def _known(option: str, given: list[str], known: tuple[str, ...]) -> None:
    """Refuse a value of ``option`` that is not one of ``known``."""
    for value in given:
        if value not in known:
            raise TsodsoError(f"{option}: unknown value {value!r}; choose from "
                              f"{', '.join(known)}")


def _events(texts: list[str], periods: int) -> Any:
    """``--event PERIODS:MW`` options as one imbalance (MW short; negative: long)."""
    import numpy as np

    from tsodso.operations import Imbalance

    total = Imbalance(np.zeros(periods), "")
    parts = []
    for text in texts:
        where, sep, mw = text.partition(":")
        if not sep:
            raise TsodsoError(f"--event: write PERIODS:MW (e.g. 10-13:2 for 2 MW short in "
                              f"periods 10 to 13, 19-21:-2 for 2 MW long); got {text!r}")
        try:
            value = float(mw)
        except ValueError:
            raise TsodsoError(f"--event {text!r}: MW must be a number, got {mw!r}") from None
        which = _period_list("--event", where)
        if max(which) >= periods:
            raise TsodsoError(f"--event {text!r}: period {max(which)} is outside the horizon "
                              f"(0-{periods - 1})")
        event = Imbalance.in_periods(periods, which, value)
        parts.append(event.description)
        total = Imbalance(total.mw + event.mw, "; ".join(parts))
    return total


@app.command()
def reserves(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario name or YAML file.")]
    = "default",
    scheme: Annotated[str, typer.Option(help="Scheme whose day-ahead dispatch is the "
                                             "base schedule.")] = "common",
    variant: Annotated[list[str] | None, typer.Option(
        help="direct (the TSO alone), prequalified (within the DSOs' limits) or common "
             "(cleared with the feeders); repeat for several (default: all three).")] = None,
    up: Annotated[float, typer.Option(help="Up reserve procured from DERs, MW per "
                                           "period.")] = 3.0,
    down: Annotated[float, typer.Option(help="Down reserve procured from DERs, MW per "
                                             "period.")] = 3.0,
    event: Annotated[list[str] | None, typer.Option(
        metavar="PERIODS:MW", help="Real-time imbalance: MW short (negative: long) in "
                                   "PERIODS, e.g. 10-13:2; repeat for several (default: "
                                   "10-13:2 and 19-21:-2).")] = None,
    capacity_price: Annotated[float, typer.Option(help="Price of reserve held, $/MW per "
                                                       "hour.")] = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Reserves through distribution: the TSO procures up and down reserve from DER
    aggregations around a scheme's day-ahead schedule and activates them in real time
    (activations acknowledged or refused with a reason; states of charge tracked). The
    feeders' AC power flow shows what each variant's activation does to them."""
    from tsodso.coordination import run_scheme
    from tsodso.operations import ReserveRequirement, compare_variants
    from tsodso.operations.reserves import VARIANTS

    system = _guard(lambda: _coordination_system(scenario))
    variants = variant or list(VARIANTS)
    _guard(lambda: _known("--variant", variants, VARIANTS))
    T = system.n_periods
    imbalance = _guard(lambda: _events(event or ["10-13:2", "19-21:-2"], T))
    requirement = _guard(lambda: ReserveRequirement.flat(T, up, down))
    with _progress(json_out):
        base = _guard(lambda: run_scheme(system, scheme))
        results = _guard(lambda: compare_variants(system, base, requirement, imbalance,
                                                  variants, capacity_price=capacity_price))
    rows = [r.summary() for r in results.values()]
    if json_out:
        _emit_json({"base_scheme": scheme, "event": imbalance.description, "rows": rows,
                    "refusals": {v: r.refusals.to_dict(orient="records")
                                 for v, r in results.items()}})
        return
    table = Table("variant", "new violations", "activated up MWh", "activated down MWh",
                  "calls", "refused", "uncovered MWh", "activation $",
                  title=f"reserves on {scenario} around {scheme}: {imbalance.description}",
                  box=box.SIMPLE_HEAD)
    for r in rows:
        table.add_row(str(r["variant"]), str(r["new_violations"]),
                      f"{r['activated_up_mwh']:.2f}", f"{r['activated_down_mwh']:.2f}",
                      str(r["calls"]), str(r["refusals"]), f"{r['uncovered_mwh']:.2f}",
                      f"{r['cost_activation']:,.2f}")
    console.print(table)
    for v, r in results.items():
        if len(r.refusals):
            console.print(f"{v}: {len(r.refusals)} call(s) refused, e.g. "
                          f"{r.refusals.reason.iloc[0]}")


@app.command()
def emergency(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario name or YAML file.")]
    = "default",
    feeder: Annotated[str, typer.Option(help="Feeder asked to change its import.")]
    = "case33bw@9",
    periods: Annotated[str, typer.Option(help="Periods of the request, e.g. 10-12.")]
    = "10-12",
    amount: Annotated[float, typer.Option(help="Change of the feeder's import, MW.")] = 0.6,
    direction: Annotated[str, typer.Option(
        help="reduce_load (the import falls) or reduce_generation (it rises).")]
    = "reduce_load",
    via: Annotated[list[str] | None, typer.Option(
        help="dso (the DSO chooses within its limits) or bypass (the TSO acts on the DERs "
             "directly); repeat for both (default: both).")] = None,
    scheme: Annotated[str, typer.Option(help="Scheme whose day-ahead dispatch is the "
                                             "base.")] = "common",
    json_out: JsonOpt = False,
) -> None:
    """An emergency request: the TSO needs a feeder's import changed by an amount; through
    the DSO (which chooses DERs and loads within its limits, or rejects with what it can
    deliver) or bypassing it. The AC power flow shows what each route delivers and
    violates."""
    from tsodso.coordination import run_scheme
    from tsodso.operations import emergency_request
    from tsodso.operations.emergency import ROUTES

    system = _guard(lambda: _coordination_system(scenario))
    window = _guard(lambda: _period_list("--periods", periods))
    _guard(lambda: _known("--via", via or [], ROUTES))
    with _progress(json_out):
        base = _guard(lambda: run_scheme(system, scheme))
        results = {r: _guard(lambda r=r: emergency_request(
            system, base, feeder, window, amount, direction, via=r))
            for r in (via or ["dso", "bypass"])}
    rows = [r.summary() for r in results.values()]
    if json_out:
        _emit_json({"base_scheme": scheme, "rows": rows,
                    "answers": {k: r.reason for k, r in results.items()}})
        return
    table = Table("route", "requested MW", "delivered MW", "met", "violations", "worst",
                  "DERs moved", "shed MWh", "cost $",
                  title=f"{direction} of {amount:g} MW on {feeder}, periods {periods}",
                  box=box.SIMPLE_HEAD)
    for r, res in zip(rows, results.values(), strict=True):
        worst = res.violation_summary()
        table.add_row(str(r["route"]), f"{r['requested_mw']:.3f}",
                      f"{r['delivered_min_mw']:.3f}-{r['delivered_max_mw']:.3f}",
                      "yes" if r["met"] else "no", str(len(res.violations)),
                      _worst_text(worst), str(r["ders_moved"]), f"{r['shed_mwh']:.3f}",
                      f"{r['cost_usd']:,.2f}")
    console.print(table)
    for k, res in results.items():
        if k == "dso":
            console.print(f"DSO's answer: {'accepted' if res.accepted else 'rejected'}"
                          f"{': ' + res.reason if res.reason else ''}")


def _worst_text(summary: dict[str, Any]) -> str:
    """The worst violations of a summary, e.g. '177 % loading, 1.0612 pu' ('-' when
    none)."""
    parts = []
    if summary.get("worst_loading_pct") is not None:
        parts.append(f"{summary['worst_loading_pct']:.0f} % loading")
    if summary.get("worst_voltage_pu") is not None:
        parts.append(f"{summary['worst_voltage_pu']:.4f} pu")
    return ", ".join(parts) or "-"


@app.command()
def fault(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario name or YAML file.")]
    = "default",
    feeder: Annotated[str, typer.Option(help="Feeder of the faulted line.")] = "case33bw@9",
    line: Annotated[int, typer.Option(help="Faulted line id.")] = 2,
    start: Annotated[int, typer.Option(help="First period of the outage.")] = 18,
    duration: Annotated[int, typer.Option(help="Periods until the line is repaired.")] = 4,
    json_out: JsonOpt = False,
) -> None:
    """A fault on a feeder line: the DSO isolates it, restores what it can by closing tie
    switches, lets sections with storage or DG run as microgrids and informs the TSO.
    Compares isolation alone, switching, and switching with microgrids: unserved energy
    per section and customer group."""
    from tsodso.operations import restore

    system = _guard(lambda: _coordination_system(scenario))
    variants = {"isolation only": (False, False), "switching": (True, False),
                "switching and microgrids": (True, True)}
    with _progress(json_out):
        results = {name: _guard(lambda sw=sw, mg=mg: restore(
            system, feeder, line, start, duration, switching=sw, microgrids=mg))
            for name, (sw, mg) in variants.items()}
    if json_out:
        _emit_json({name: {"load_mwh": r.load_mwh, "unserved_mwh": r.unserved_mwh,
                           "unserved_cost_usd": r.unserved_cost_usd,
                           "state": r.state, "state_after": r.state_after,
                           "sections": r.sections.to_dict(orient="records"),
                           "groups": r.groups.to_dict(orient="records"),
                           "actions": r.actions.to_dict(orient="records")}
                    for name, r in results.items()})
        return
    table = Table("variant", "load MWh", "unserved MWh", "unserved $", "grid state",
                  "switching", title=f"fault on line {line} of {feeder}, periods "
                  f"{start}-{start + duration - 1}", box=box.SIMPLE_HEAD)
    for name, r in results.items():
        moves = ", ".join(f"{a.action} {a.line_id}" for a in r.actions.itertuples()) or "-"
        table.add_row(name, f"{r.load_mwh:.3f}", f"{r.unserved_mwh:.3f}",
                      f"{r.unserved_cost_usd:,.0f}", r.state, moves)
    console.print(table)
    last = results["switching and microgrids"]
    groups = Table(*GROUP_HEADERS, title="unserved energy per section and customer group "
                   "(switching and microgrids)", box=box.SIMPLE_HEAD)
    for g in last.groups.itertuples(index=False):
        groups.add_row(str(g.section), str(g.customer_group), str(g.n_loads),
                       f"{g.load_mwh:.3f}", f"{g.unserved_mwh:.3f}")
    console.print(groups)


GROUP_HEADERS = ("section", "customer group", "loads", "load MWh", "unserved MWh")


def _scenario_recipe(scenario: str) -> tuple[dict[str, Any], str]:
    """A built-in scenario's or a YAML file's recipe, and the folder its paths start from."""
    from tsodso.io.scenario import read_yaml
    from tsodso.scenarios import scenario_path

    path = Path(scenario)
    if not scenario.endswith((".yaml", ".yml")):
        path = scenario_path(scenario)
    recipe = read_yaml(path, "scenario")
    if not isinstance(recipe, dict):
        raise TsodsoError(f"{path}: a scenario is a mapping of keys")
    return recipe, str(path.parent)


@app.command()
def sweep(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario name or YAML file.")]
    = "default",
    schemes: Annotated[list[str] | None, typer.Option(
        help="Schemes, comma-separated or repeated (default: all seven); common always "
             "runs, as the benchmark of the gap.")] = None,
    penetration: Annotated[str, typer.Option(
        help="DER penetration levels, START:STOP:STEP or a list: multiples of the "
             "scenario's DER shares (SimBench scenarios: 0, 1, 2).")] = "0:2:0.5",
    seeds: Annotated[int, typer.Option(help="Seeds of DER placement per level (the "
                                            "scenario's seed and the next ones).")] = 1,
    workers: Annotated[int | None, typer.Option(help="Run points on a Dask LocalCluster of "
                                                     "this many processes.")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Run points on the Dask scheduler "
                                                       "at this address.")] = None,
    out: Annotated[str | None, typer.Option(metavar="DIR", help="Sweep folder (default "
                                            "sweep-SCENARIO): finished points are kept "
                                            "there and skipped when run again.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """A DER penetration sweep: the schemes at every penetration level and seed, with the
    gap to common, violations, curtailment, DER revenue and consumer payments per point;
    the value-of-coordination curve; the penetration at which tso_only first violates
    distribution limits. Progress per point; an interrupted sweep resumes."""
    from tsodso import progress
    from tsodso.coordination import SCHEMES
    from tsodso.studies import penetration_levels
    from tsodso.studies import sweep as run_sweep

    names = [n.strip() for item in (schemes or [",".join(SCHEMES)]) for n in item.split(",")
             if n.strip()]
    levels = _guard(lambda: penetration_levels(penetration))
    if seeds < 1:
        _guard(lambda: _refuse(f"--seeds: at least 1 seed per level, got {seeds}"))
    recipe, base_dir = _guard(lambda: _scenario_recipe(scenario))
    first = int(recipe.get("seed", 0) or 0)
    stem = Path(scenario).stem if scenario.endswith((".yaml", ".yml")) else scenario
    folder = out or f"sweep-{stem}"
    with _progress(json_out), progress.task("sweep", total=len(levels) * seeds) as tick:
        result = _guard(lambda: run_sweep(
            recipe, names, levels, range(first, first + seeds), out=folder, workers=workers,
            scheduler=scheduler, scenario=scenario, base_dir=base_dir,
            on_point=lambda lv, sd, new: tick(info=f"p={lv:g} seed={sd}"
                                              f"{'' if new else ' (stored)'}")))
    rows = result.rows
    onset = result.first_violation("tso_only") if "tso_only" in names else None
    if json_out:
        _emit_json({"folder": str(result.folder), "computed": result.computed,
                    "skipped": result.skipped, "tso_only_first_violation": onset,
                    "rows": rows.to_dict(orient="records"),
                    "curve": result.curve().to_dict(orient="records")})
        return
    curve = result.curve()
    table = Table("scheme", *[f"p={p:g}" for p in levels],
                  title=f"value of coordination on {scenario}: mean cost above common, $ "
                        f"(violations)", box=box.SIMPLE_HEAD)
    for scheme in dict.fromkeys(curve.scheme):
        part = curve[curve.scheme == scheme].set_index("penetration")
        cells = []
        for p in levels:
            if p in part.index:
                r = part.loc[p]
                cells.append(f"{round(r.value_of_coordination) + 0:,.0f} "
                             f"({r.violations:g})")
            else:
                cells.append("-")
        table.add_row(scheme, *cells)
    console.print(table)
    console.print(f"sweep folder: {result.folder} ({result.computed} point(s) run, "
                  f"{result.skipped} found there); " + (
                      f"tso_only first violates distribution limits at penetration "
                      f"{onset:g}" if onset is not None else
                      "tso_only never violates distribution limits in this sweep"
                      if "tso_only" in names else ""))


def _rate(option: str, text: str) -> float:
    """A yearly rate written ``3%`` or ``0.03``."""
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise TsodsoError(f"{option}: write a rate as 3% or 0.03, got {text!r}") from None


@app.command()
def nwa(
    feeder: Annotated[str, typer.Argument(help="Feeder id in the scenario, e.g. "
                                               "case33bw@9.")],
    upgrade_cost: Annotated[float, typer.Option(help="Capital cost of the upgrade, $ "
                                                     "(your figure).")],
    scenario: Annotated[str, typer.Option(help="Built-in scenario name or YAML file.")]
    = "low-penetration",
    growth: Annotated[str, typer.Option(help="Load growth per year, e.g. 3% or 0.03.")]
    = "3%",
    years: Annotated[int, typer.Option(help="Years studied.")] = 10,
    discount_rate: Annotated[str, typer.Option(help="Discount rate per year.")] = "5%",
    flexibility_price: Annotated[float, typer.Option(help="Price of a MWh of DER "
                                                          "flexibility, $/MWh.")] = 0.0,
    days_per_year: Annotated[float, typer.Option(help="Days a year like the study "
                                                      "day.")] = 365.0,
    remuneration: Annotated[str, typer.Option(help="totex or cost_plus.")] = "totex",
    allowed_return: Annotated[str, typer.Option(help="Cost-plus: return allowed on the "
                                                     "asset base per year.")] = "7%",
    json_out: JsonOpt = False,
) -> None:
    """Non-wires alternative: the year a feeder's growing load overloads a line or its
    transformer, the DER flexibility that defers the upgrade year by year (MW, MWh, cost),
    the break-even flexibility price, the years deferred and how the DSO's remuneration
    (total expenditure or cost-plus) changes the choice."""
    from tsodso.studies import NwaOptions, non_wires_alternative

    system = _guard(lambda: _coordination_system(scenario))
    options = _guard(lambda: NwaOptions(
        growth=_rate("--growth", growth), years=years, upgrade_cost=upgrade_cost,
        discount_rate=_rate("--discount-rate", discount_rate),
        flexibility_price=flexibility_price, days_per_year=days_per_year,
        remuneration=remuneration,  # type: ignore[arg-type]
        allowed_return=_rate("--allowed-return", allowed_return)))
    with _progress(json_out):
        result = _guard(lambda: non_wires_alternative(system, feeder, options))
    if json_out:
        _emit_json({**result.summary(), "years": result.years.to_dict(orient="records"),
                    "deferrals": result.deferrals.to_dict(orient="records"),
                    "notes": result.notes})
        return
    table = Table("year", "load x", "peak loading %", "flex MW", "flex MWh/day",
                  "flex $/day", "covered", title=f"non-wires alternative on {feeder} "
                  f"({scenario})", box=box.SIMPLE_HEAD)
    for r in result.years.itertuples(index=False):
        table.add_row(str(r.year), f"{r.load_scale:.3f}", f"{r.peak_loading_pct:.1f}",
                      f"{r.flex_mw:.3f}", f"{r.flex_mwh_day:.3f}", f"{r.flex_cost_day:,.2f}",
                      "yes" if r.covered else "no")
    console.print(table)
    s = result.summary()
    if s["need_year"] is None:
        console.print(" ".join(result.notes))
        return
    be = s["break_even_price"]
    console.print(
        f"upgrade needed in year {s['need_year']} without flexibility; "
        + (f"flexibility no longer covers from year {s['cover_limit_year']}; "
           if s["cover_limit_year"] is not None else "flexibility covers every year; ") +
        f"{remuneration} defers it {s['years_deferred']} year(s) (least cost: "
        f"{s['least_cost_deferral']}); deferral value {s['deferral_value']:,.0f} $; "
        f"break-even flexibility price "
        f"{'-' if be is None else f'{be:,.2f} $/MWh'}")
    for note in result.notes:
        console.print(f"note: {note}")


@app.command("reliability-options")
def reliability_options_cmd(
    feeder: Annotated[str, typer.Argument(help="Feeder id in the scenario, e.g. "
                                               "case33bw@9.")],
    upgrade_cost: Annotated[float, typer.Option(help="Capital cost of the upgrade the "
                                                     "options would replace, $.")],
    scenario: Annotated[str, typer.Option(help="Built-in scenario name or YAML file.")]
    = "low-penetration",
    growth: Annotated[str, typer.Option(help="Load growth per year, e.g. 3%.")] = "3%",
    year: Annotated[int, typer.Option(help="Planning year (years of growth).")] = 10,
    strike_price: Annotated[float, typer.Option(help="Strike price K, $/MWh.")] = 300.0,
    penalty: Annotated[float, typer.Option(help="Penalty per MWh not delivered when "
                                                "called, $/MWh.")] = 1000.0,
    availability: Annotated[float, typer.Option(help="Probability a provider is "
                                                     "available.")] = 0.95,
    availability_cost: Annotated[float, typer.Option(help="Providers' cost of staying "
                                                          "available, $/MW-year.")] = 0.0,
    energy_price: Annotated[float, typer.Option(help="Interface energy price, "
                                                     "$/MWh.")] = 50.0,
    days_per_year: Annotated[float, typer.Option(help="Days a year like the study "
                                                      "day.")] = 365.0,
    discount_rate: Annotated[str, typer.Option(help="Discount rate per year.")] = "5%",
    asset_life: Annotated[int, typer.Option(help="Upgrade's life, years.")] = 40,
    json_out: JsonOpt = False,
) -> None:
    """Reliability options: the DSO auctions firm capacity from a feeder's DG and storage
    (strike price, premium, penalty when unavailable) instead of upgrading it; the offers
    in merit order, the clearing premium and the planning cost with and without them."""
    from tsodso.studies import RoOptions, reliability_options

    system = _guard(lambda: _coordination_system(scenario))
    options = _guard(lambda: RoOptions(
        growth=_rate("--growth", growth), year=year, upgrade_cost=upgrade_cost,
        strike_price=strike_price, penalty=penalty, availability=availability,
        availability_cost=availability_cost, energy_price=energy_price,
        days_per_year=days_per_year, discount_rate=_rate("--discount-rate", discount_rate),
        asset_life_years=asset_life))
    with _progress(json_out):
        result = _guard(lambda: reliability_options(system, feeder, options))
    if json_out:
        _emit_json({**result.summary(), "offers": result.offers.to_dict(orient="records"),
                    "notes": result.notes})
        return
    table = Table("DER", "kind", "firm MW", "option value", "penalty risk", "premium bid",
                  "accepted MW", title=f"reliability options on {feeder}, year {year} "
                  f"(premiums in $/MW-year)", box=box.SIMPLE_HEAD)
    for o in result.offers.itertuples(index=False):
        table.add_row(o.der_id, o.kind, f"{o.firm_mw:.3f}", f"{o.option_value:,.0f}",
                      f"{o.penalty_risk:,.0f}", f"{o.premium_bid:,.0f}",
                      f"{o.accepted_mw:.3f}")
    console.print(table)
    s = result.summary()
    price = "-" if s["clearing_premium"] is None else f"{s['clearing_premium']:,.0f} $/MW-year"
    console.print(f"need {s['need_mw']:.3f} MW over {s['window_hours']:g} h; bought "
                  f"{s['bought_mw']:.3f} MW at {price}; planning cost "
                  f"{s['planning_cost_without']:,.0f} $/year without options, "
                  f"{s['planning_cost_with']:,.0f} $/year with them")
    for note in result.notes:
        console.print(f"note: {note}")


@app.command()
def settle(
    folder: Annotated[str, typer.Argument(help="Operation folder written by tsodso operate.")],
    json_out: JsonOpt = False,
) -> None:
    """Settle an operation's realised periods: each actor's statement (TSO, each DSO, each
    aggregator, consumers, generators) with its line items, $ (+ received), the DSOs'
    network charge recovering their residual cost, the imbalance (the sum over all actors:
    zero to the cent) and each aggregator's metered energy against its day-ahead
    baseline."""
    from tsodso.operations import settle_operation

    books = _guard(lambda: settle_operation(folder))
    if json_out:
        _emit_json(books.to_json())
        return
    table = Table("actor", "line item", Column("$", justify="right"),
                  title=f"settlement of {folder} "
                  f"({books.periods} period(s){'' if books.complete else ', incomplete'})",
                  box=box.SIMPLE_HEAD)
    for actor, lines in books.actors.items():
        for i, (line, amount) in enumerate(lines.items()):
            table.add_row(actor if i == 0 else "", line, f"{amount:,.2f}")
        table.add_row("", "[bold]total[/bold]", f"[bold]{books.total(actor):,.2f}[/bold]")
    console.print(table)
    console.print(f"imbalance (sum over all actors): {round(books.imbalance, 2) + 0.0:,.2f} $")
    if len(books.deliveries):
        deliveries = Table("aggregator", "day", "metered MWh", "baseline MWh",
                           "deviation MWh", title="delivery against day-ahead baselines",
                           box=box.SIMPLE_HEAD)
        for r in books.deliveries.itertuples(index=False):
            deliveries.add_row(r.aggregator, str(r.day), f"{r.metered_mwh:,.3f}",
                               f"{r.baseline_mwh:,.3f}", f"{r.deviation_mwh:+,.3f}")
        console.print(deliveries)


@app.command()
def report(
    folder: Annotated[str, typer.Argument(help="Run folder written by tsodso run --out.")],
    output: Annotated[str | None, typer.Option("-o", "--output", metavar="FILE.html",
                                               help="Where to write the report (default: "
                                                    "RUN_DIR/report.html).")] = None,
    figures: FiguresOpt = None,
) -> None:
    """Write a run folder's HTML report: one self-contained file (opens offline) with the
    scheme comparison, money flows, prices on the grid, DLMP heatmaps, voltage profiles,
    DER dispatch, interface schedules and convergence. Needs the plot extra
    (pip install "tsodso[plot]")."""
    from tsodso.report import write_report

    written = _guard(lambda: write_report(folder, output))
    console.print(f"report: {written}")
    if figures is not None:
        _write_figures(folder, figures)


def _write_figures(folder: str, figures: str) -> None:
    from tsodso.report import write_figures

    paths = _guard(lambda: write_figures(folder, figures))
    console.print(f"figures: {len(paths)} files in {figures}")


def _run_to_folder(scenario: str, schemes: list[str] | None, workers: int | None,
                   scheduler: str | None, low_memory: bool, out: str,
                   force: bool, sets: list[str] | None = None,
                   system: Any = None) -> dict[str, Any]:
    """``run --out``: options, scenario and folder checked before anything runs, then the
    run (every scheme's messages logged in ``out/log.sqlite``), its run folder and its
    comparison."""
    from tsodso.actors import LOG_FILE_NAME, MessageLog
    from tsodso.coordination.run_folder import comparison_rows, prepare_run_folder, write_run

    names = _scheme_names(schemes, workers, scheduler, low_memory)
    settings = _scheme_settings(sets, names)
    system = _coordination_system(scenario) if system is None else system
    folder = prepare_run_folder(out, force)
    folder.mkdir(parents=True, exist_ok=True)
    log = MessageLog(folder / LOG_FILE_NAME, run_id=system.name or "run")
    try:
        system, outcomes = _solve_schemes(scenario, names, workers, scheduler, low_memory,
                                          system, settings, log)
    finally:
        log.close()
    options = {"schemes": names, "workers": workers, "scheduler": scheduler,
               "low_memory": low_memory, "scheme_options": settings}
    write_run(out, system, outcomes, options, scenario)
    return comparison_rows(outcomes, scenario, system.description)


@app.command()
def show(
    folder: Annotated[str, typer.Argument(help="Run folder written by tsodso run --out.")],
    json_out: JsonOpt = False,
) -> None:
    """Show a run folder's comparison, as tsodso run printed it (nothing is solved)."""
    from tsodso.coordination.run_folder import open_run

    result = _guard(lambda: open_run(folder).rows())
    if json_out:
        _emit_json(result)
        return
    console.print(f"[bold]{result['scenario']}[/bold]: {result['description']}")
    _print_comparison(result)


@app.command()
def compare(
    scenarios: Annotated[list[str], typer.Argument(help="Scenarios to compare.")],
    scheme: SchemeOpt = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    low_memory: LowMemoryOpt = False,
    sets: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run the schemes on several scenarios."""

    def prepare() -> list[Any]:  # every option and scenario checked before any run
        _scheme_settings(sets, _scheme_names(scheme, workers, scheduler, low_memory))
        twice = [s for i, s in enumerate(scenarios) if s in scenarios[:i]]
        if twice:
            raise TsodsoError(f"scenario '{twice[0]}' is given twice")
        return [_coordination_system(s) for s in scenarios]

    systems = _guard(prepare)
    with _progress(json_out):
        results = [_guard(lambda s=s, sy=sy: _run_schemes(s, scheme, workers, scheduler,
                                                          low_memory, sy, sets))
                   for s, sy in zip(scenarios, systems, strict=True)]
    if json_out:
        _emit_json(results)
        return
    for r in results:
        _print_comparison(r)


@app.command("log")
def log_cmd(
    run_dir: Annotated[str, typer.Argument(help="Run folder (its log.sqlite is read), "
                                                "operation folder (every step's log) or a "
                                                "message log file (.sqlite).")],
    kind: Annotated[str | None, typer.Option(help="Only messages of this kind, e.g. "
                                                  "offer.")] = None,
    sender: Annotated[str | None, typer.Option(help="Only messages from this party: tso, "
                                                    "dso:NAME, aggregator:NAME.")] = None,
    recipient: Annotated[str | None, typer.Option(help="Only messages to this party.")] = None,
    scheme: Annotated[str | None, typer.Option(help="Only messages of this scheme.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Messages of a run's durable log: one row each, then count and bytes by kind. An
    operation folder (tsodso operate) lists every completed step's messages, in order."""
    from pathlib import Path

    from tsodso.actors import LOG_FILE_NAME, MessageLog

    def work() -> tuple[Path, Any]:
        path = Path(run_dir)
        if path.is_dir() and (path / "operation.json").is_file():
            return path, _operation_log(path, kind, sender, recipient, scheme)
        if path.is_dir():
            path = path / LOG_FILE_NAME
            if not path.is_file():
                raise TsodsoError(f"no message log in {run_dir} (expected {LOG_FILE_NAME})")
        elif not path.exists():
            raise TsodsoError(f"no run folder or message log {run_dir}")
        with MessageLog(path, create=False) as log:
            return path, log.frame(kind=kind, sender=sender, recipient=recipient,
                                   scheme=scheme)

    path, frame = _guard(work)
    by_kind = {str(k): {"count": int(len(g)), "bytes": int(g["bytes"].sum())}
               for k, g in frame.groupby("kind", sort=True)}
    if json_out:
        _emit_json({"messages": json.loads(frame.to_json(orient="records")),
                    "summary": by_kind})
        return
    table = Table(title=f"{path}: {len(frame)} message(s)")
    for head in ("seq", "id", "scheme", "kind", "sender", "recipient", "iteration", "periods",
                 "bytes"):
        table.add_column(head, justify="right" if head in {"seq", "iteration", "bytes"}
                         else "left")
    for r in frame.itertuples(index=False):
        last = r.first_period + r.n_periods - 1
        table.add_row(str(r.seq), r.id, r.scheme, r.kind, r.sender, r.recipient,
                      str(r.iteration),
                      str(last) if r.n_periods == 1 else f"{r.first_period}-{last}",
                      str(r.bytes))
    console.print(table)
    totals = Table(title="messages by kind (bytes: payload JSON)")
    totals.add_column("kind")
    totals.add_column("count", justify="right")
    totals.add_column("bytes", justify="right")
    for name, row in by_kind.items():
        totals.add_row(name, str(row["count"]), str(row["bytes"]))
    totals.add_row("total", str(len(frame)), str(int(frame["bytes"].sum())), style="bold")
    console.print(totals)


def _operation_log(folder: Any, kind: str | None, sender: str | None,
                   recipient: str | None, scheme: str | None) -> Any:
    """The messages of an operation folder's completed steps, in step order; the scheme
    column names the step and its stage (``00003-real_time:common``)."""
    import pandas as pd

    from tsodso.actors import LOG_FILE_NAME, MessageLog
    from tsodso.operations import read_operation

    op = read_operation(folder)
    frames = []
    for row in op.steps.itertuples(index=False):
        step = f"{int(row.step):05d}-{row.stage}"
        path = folder / "steps" / step / LOG_FILE_NAME
        with MessageLog(path, create=False) as log:
            frame = log.frame(kind=kind, sender=sender, recipient=recipient, scheme=scheme)
        frames.append(frame.assign(scheme=f"{step}:" + frame["scheme"].astype(str)))
    if not frames:
        raise TsodsoError(f"{folder}: no completed step yet")
    return pd.concat(frames, ignore_index=True)


def _platform_commands() -> None:
    """``tsodso serve`` and ``tsodso platform ...`` (:mod:`tsodso.platform.cli`; the
    service's libraries are imported only when a command runs)."""
    from tsodso.platform import cli as platform_cli

    app.command("serve")(platform_cli.serve)
    app.add_typer(platform_cli.app, name="platform")


_platform_commands()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

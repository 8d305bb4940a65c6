"""The ``tsodso`` command line: ``run``, ``scenarios``, ``inspect``, ``schema``, ``export``.

Every command takes ``--json`` for machine-readable output. Errors print one line and exit
with status 1 (2 for usage errors); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tsodso.errors import TsodsoError, ValidationError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="tsodso: TSO-DSO coordination with distributed energy resources.",
    pretty_exceptions_enable=False,
)
console = Console()
_state = {"debug": False}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


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
    periods: Annotated[int | None, typer.Option(help="Periods to clear (default: the "
                                                     "scenario's horizon, 1 for a case).")] = None,
    reserves: Annotated[bool, typer.Option("--reserves", help="Co-optimise reserves.")] = False,
    rules: Annotated[str | None, typer.Option(help="Participation rules preset: pjm, nyiso, "
                                                   "ercot, caiso, eu, custom.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Clear the TSO market: multi-period DC-OPF with decomposed LMPs."""
    from tsodso.io import load
    from tsodso.rules import get_rules
    from tsodso.tso import TsoOptions, clear_tso_market

    def work() -> tuple[Any, float]:
        t0 = time.perf_counter()
        system = load(case, n_periods=periods)
        load_s = time.perf_counter() - t0
        options = TsoOptions(periods=periods, reserves=reserves,
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
    table = Table("bus", "LMP min", "LMP max", "energy", "congestion", title="LMP ($/MWh)")
    show = lmp.columns[:: max(1, len(lmp.columns) // 20)]
    for bus in show:
        table.add_row(str(bus), f"{lmp[bus].min():.2f}", f"{lmp[bus].max():.2f}",
                      f"{result.lmp_energy[bus].mean():.2f}",
                      f"{result.lmp_congestion[bus].mean():.2f}")
    console.print(table)
    if len(show) < len(lmp.columns):
        console.print(f"({len(show)} of {len(lmp.columns)} buses shown; --json gives all)")
    console.print(f"binding branches: {result.binding_branches or 'none'}")
    shed = float(result.shed.to_numpy().sum())
    if shed > 1e-6:
        console.print(f"[red]load shed: {shed:.3f} MWh at value of lost load[/red]")
    if len(result.excluded):
        console.print(f"{len(result.excluded)} DERs kept out of the market by the rules "
                      f"(--json lists them with reasons)")
    t = result.timings
    console.print(f"timings: load {t['load_s']:.3f} s, build {t['build_s']:.3f} s, "
                  f"solve {t['solve_s']:.3f} s, total {t['total_s']:.3f} s")


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="Built-in scenario or file.")] = "default",
    json_out: JsonOpt = False,
) -> None:
    """Run the main job on a scenario.

    Today this loads, validates and summarises the scenario. Market clearing (TSO DC-OPF,
    DSO OPF) and the coordination schemes are not implemented yet, and no result is
    invented for them.
    """
    from tsodso.io import load

    start = time.perf_counter()
    system = _guard(lambda: load(scenario))
    summary = system.summary()
    not_yet = ["TSO market clearing (DC-OPF, LMPs)", "DSO OPF and DLMPs",
               "coordination schemes (tso_only ... admm)"]
    result = {"scenario": scenario, "status": "validated", "summary": summary,
              "not_implemented": not_yet, "wall_s": round(time.perf_counter() - start, 3)}
    if json_out:
        _emit_json(result)
        return
    console.print(f"[bold]{scenario}[/bold]: {system.description}")
    console.print(_summary_table(summary))
    console.print(f"[green]validated[/green]: no data issues ({result['wall_s']} s)")
    console.print("[yellow]not implemented yet[/yellow]: " + "; ".join(not_yet) +
                  ". No market results are shown until they are.")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

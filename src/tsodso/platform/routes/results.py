"""A cleared session's results: awards, public prices, schedules, statements, the message
log and the report charts; each party reads its own (:mod:`tsodso.platform.access`)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, JSONResponse

from tsodso.platform import db
from tsodso.platform.access import Forbidden, NotFound, require, select_visible
from tsodso.platform.routes.deps import CallerDep, DbDep
from tsodso.platform.routes.sessions import session_of
from tsodso.platform.store import PlatformError

router = APIRouter(tags=["results"])

#: charts every party may see (public prices); the others need to see every party
PUBLIC_CHARTS = ("grid_prices", "dlmp", "interface_prices")
ALL_CHARTS = (*PUBLIC_CHARTS, "comparison", "money_flows", "der_dispatch")


def _cleared(s: Any, caller: Any, sid: int) -> db.MarketSession:
    sess = session_of(s, caller, sid)
    if sess.state != "cleared":
        raise PlatformError(409, f"session {sid} is {sess.state}: no results"
                            + (f" ({sess.error})" if sess.error else ""))
    return sess


def _rows(s: Any, caller: Any, model: Any, sid: int, *where: Any) -> list[dict[str, Any]]:
    cols = [c.key for c in sa.inspect(model).columns if c.key not in ("session_id",)]
    rows = s.scalars(select_visible(caller, model, model.session_id == sid, *where)
                     .order_by(sa.inspect(model).primary_key[0]))
    return [{c: getattr(r, c) for c in cols} for r in rows]


@router.get("/api/sessions/{sid}/awards")
def awards(sid: int, caller: CallerDep, s: DbDep) -> list[dict[str, Any]]:
    """Awards per offer and period (MW, the price it is settled at, $/MWh)."""
    require(caller, "awards:read")
    _cleared(s, caller, sid)
    return _rows(s, caller, db.Award, sid)


@router.get("/api/sessions/{sid}/prices")
def prices(sid: int, caller: CallerDep, s: DbDep,
           kind: str | None = Query(None, description="lmp, dlmp_p or dlmp_q"),
           feeder_id: str | None = None) -> list[dict[str, Any]]:
    """Public prices: LMPs ($/MWh), DLMPs for P ($/MWh) and Q ($/MVArh)."""
    require(caller, "prices:read")
    _cleared(s, caller, sid)
    where = []
    if kind is not None:
        where.append(db.Price.kind == kind)
    if feeder_id is not None:
        where.append(db.Price.feeder_id == feeder_id)
    return _rows(s, caller, db.Price, sid, *where)


@router.get("/api/sessions/{sid}/schedules")
def schedules(sid: int, caller: CallerDep, s: DbDep) -> list[dict[str, Any]]:
    """Final DER schedules (MW, MVAr per period) the caller may see."""
    require(caller, "schedules:read")
    _cleared(s, caller, sid)
    return _rows(s, caller, db.Schedule, sid)


@router.get("/api/sessions/{sid}/statements")
def statements(sid: int, caller: CallerDep, s: DbDep) -> list[dict[str, Any]]:
    """Settlement statement lines ($ over the horizon, positive = received)."""
    require(caller, "statements:read")
    _cleared(s, caller, sid)
    return _rows(s, caller, db.Statement, sid)


@router.get("/api/sessions/{sid}/messages")
def messages(sid: int, caller: CallerDep, s: DbDep, kind: str | None = None
             ) -> list[dict[str, Any]]:
    """The session's messages the caller sent or received."""
    require(caller, "messages:read")
    session_of(s, caller, sid)
    where = [] if kind is None else [db.Message.kind == kind]
    rows = _rows(s, caller, db.Message, sid, *where)
    for r in rows:
        r["at"] = r["at"].isoformat()
    return rows


@router.get("/api/sessions/{sid}/charts/{name}")
def chart(sid: int, name: str, caller: CallerDep, s: DbDep,
          feeder_id: str | None = None) -> JSONResponse:
    """A report chart of the cleared session as Plotly JSON: public price charts
    (``grid_prices``, ``dlmp`` and ``interface_prices`` of a feeder) for every party; the
    others (``comparison``, ``money_flows``, ``der_dispatch``) for the market operator and
    auditors. Needs the plot extra."""
    require(caller, "prices:read")
    sess = _cleared(s, caller, sid)
    if name not in ALL_CHARTS:
        raise NotFound(f"chart '{name}' not found: charts are {', '.join(ALL_CHARTS)}")
    if name not in PUBLIC_CHARTS and not caller.sees_all:
        raise Forbidden(f"chart '{name}' shows every party's data: the market operator and "
                        "auditors see it")
    from tsodso.coordination.run_folder import open_run
    from tsodso.report import charts

    try:
        charts.plotly_modules()
    except Exception as err:  # noqa: BLE001 - the plot extra is missing
        raise PlatformError(501, f"charts need the plot extra ({err})") from None
    run = open_run(Path(sess.folder))
    outcome = run.outcomes[sess.scheme]
    feeders = run.system.feeder_ids
    if name in ("dlmp", "interface_prices") and feeder_id not in feeders:
        raise PlatformError(422, f"feeder_id: give one of {', '.join(feeders)}")
    fig = {"grid_prices": lambda: charts.grid_prices(outcome, run.system),
           "dlmp": lambda: charts.dlmp_heatmap(outcome, feeder_id),
           "interface_prices": lambda: charts.interface_prices({sess.scheme: outcome},
                                                               feeder_id),
           "comparison": lambda: charts.comparison({sess.scheme: outcome}),
           "money_flows": lambda: charts.money_flows({sess.scheme: outcome}),
           "der_dispatch": lambda: charts.der_dispatch(outcome, run.system)}[name]()
    return JSONResponse(json.loads(fig.to_json()))


@router.get("/api/sessions/{sid}/report")
def report(sid: int, caller: CallerDep, s: DbDep) -> FileResponse:
    """The cleared session's HTML report (``tsodso report`` of its run folder: every
    party's dispatch and money), for the market operator and auditors. Needs the plot
    extra."""
    require(caller, "sessions:read")
    sess = _cleared(s, caller, sid)
    if not caller.sees_all:
        raise Forbidden("the session's report shows every party's data: the market operator "
                        "and auditors see it")
    folder = Path(sess.folder)
    path = folder / "report.html"
    if not path.exists():
        from tsodso.report import write_report

        scratch = folder / f".report-{uuid.uuid4().hex}.html"
        try:
            write_report(folder, scratch)
            os.replace(scratch, path)  # a reader never sees a half-written report
        except ImportError as err:
            raise PlatformError(501, f"the report needs the plot extra ({err})") from None
    return FileResponse(path, media_type="text/html")

"""The operator platform under load: many aggregators' clients submitting offers at once.

Run: ``python benchmarks/bench_platform.py [--clients 200] [--offers 10000]
[--auth key|token|both] [--race 8] [--deadline 300] [--json [FILE]] [--py-spy FILE]
[--keep] [--tsodso PATH]``. Exit status 0 only when every check below passes.

The script starts the real service in a subprocess (``tsodso serve --db TMP/platform.sqlite
--seed default``, a free port, a fresh temporary folder), opens as the market operator
enough market sessions (scheme ``tso_only``, gate open from an hour ago to two hours ahead)
that no (session, DER) pair gets more than one offer (the scenario has only ~112 offerable
DERs: 10,000 offers need ~100 sessions), and gives each of the six aggregators its
credentials: an API key made by ``tsodso platform add-key`` (``--auth key``, machine
clients) or a bearer token from ``POST /token``, one login per simulated client (``--auth
token``; ``both`` runs the whole benchmark twice, each on its own server and database).

Then ``--clients`` simulated clients (asyncio, one ``httpx.AsyncClient`` each, bound to
the aggregators round-robin) start together and submit ``--offers`` new offers in total
(``POST /api/sessions/{sid}/offers``), each with an offer id unique to its aggregator and a
(session, DER) pair used by no other offer; every request's latency and status are kept.
Wall time runs from the start signal to the last answer; throughput = offers / wall time.
A client sends nothing more after ``--deadline`` seconds (a jammed service then ends the
run with the rest counted as ``not sent``); each request waits ``--timeout`` (60 s) at most.

Checks afterwards: each aggregator reads its offers back through the API and the database
file is read directly (sqlite3): every 201 must be stored exactly once (``lost``: a 201 not
stored; ``duplicated``: a stored (session, organisation, offer id) or active (session, DER)
more than once; ``extra``: a stored offer no 201 announced), and the answers other than 201
must be none (listed by status). ``tsodso platform verify-audit`` must pass and the audit
log must hold one record per state-changing request (logins, sessions, offers).

``--race N`` (default 8; 0: off) then probes the service's uniqueness rules under
concurrency, in a session of its own that the figures above leave out: group after group,
N clients at once submit an offer for the same DER with different offer ids (``--race-ders``
DERs per aggregator), or the same offer id for different DERs; exactly one of each group
may be stored, the others must be refused with 409. The table ends with three verdicts:
offers (the issue's must-show: none lost or duplicated), audit, race.

The server's and the clients' CPU seconds are printed beside the wall time: on this 2-core
machine the clients share the CPU with the service. ``--py-spy FILE`` runs the service
under ``py-spy record`` (all threads; ``.svg`` flame graph, ``.txt`` collapsed stacks or
``.json`` speedscope) to see where the time goes. ``--tsodso PATH`` runs another
``tsodso`` command (another checkout's install, or one with a fix patched in).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PASSWORD = "bench-platform-password"
OFFERS_PATH = "/api/sessions/{sid}/offers"


# ------------------------------------------------------------------------------ the plan
@dataclass
class Job:
    """One offer to submit: session index, DER, offer id and body."""

    session: int
    der_id: str
    offer_id: str
    body: dict[str, Any]


@dataclass
class Result:
    """One request's outcome."""

    client: int
    aggregator: str
    session: int  # index into the session ids
    offer_id: str
    der_id: str
    status: int | str  # HTTP status, or the exception's name
    latency_s: float
    pk: int | None = None
    detail: str = ""


def portfolios(scenario: str) -> dict[str, list[tuple[str, float]]]:
    """Each aggregator's offerable DERs (id, rating MW), as the service checks them."""
    from tsodso.io import load
    from tsodso.platform.offers import OFFERABLE_KINDS

    d = load(scenario).ders
    d = d[d.kind.isin(OFFERABLE_KINDS) & d.aggregator_id.notna()]
    if "telemetry" in d.columns:
        d = d[d.telemetry.astype(bool)]
    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for der, agg, p_max in zip(d.der_id, d.aggregator_id, d.p_max_mw, strict=True):
        if float(p_max) > 0:
            out[str(agg)].append((str(der), float(p_max)))
    return dict(sorted(out.items()))


def _steps(p_max: float, k: int) -> list[dict[str, float]]:
    """Two steps summing to 90 % of the rating (rounded down to the microwatt)."""
    q1 = math.floor(p_max * 0.6 * 1e6) / 1e6
    q2 = math.floor(p_max * 0.3 * 1e6) / 1e6
    price = 20.0 + k % 50
    return [{"quantity_mw": q1, "price_per_mwh": price},
            {"quantity_mw": q2, "price_per_mwh": price + 15.0}]


def make_plan(ports: dict[str, list[tuple[str, float]]], n_clients: int, n_offers: int
              ) -> tuple[int, list[str], list[list[Job]]]:
    """(sessions needed, each client's aggregator, each client's jobs).

    Client ``c`` works for aggregator ``c % 6``; the offers are shared out evenly among the
    clients; an aggregator's (session, DER) pairs are taken session by session and dealt
    to its clients in turn, so at any moment the clients hit the same few sessions."""
    aggs = list(ports)
    client_agg = [aggs[c % len(aggs)] for c in range(n_clients)]
    quota = [n_offers // n_clients + (1 if c < n_offers % n_clients else 0)
             for c in range(n_clients)]
    per_agg: dict[str, list[int]] = defaultdict(list)
    for c, agg in enumerate(client_agg):
        per_agg[agg].append(c)
    total = {a: sum(quota[c] for c in cs) for a, cs in per_agg.items()}
    n_sessions = max(math.ceil(total[a] / len(ports[a])) for a in per_agg)
    jobs: list[list[Job]] = [[] for _ in range(n_clients)]
    for agg, clients in per_agg.items():
        pairs = iter([(s, der, p) for s in range(n_sessions) for der, p in ports[agg]])
        left = {c: quota[c] for c in clients}
        while any(left.values()):
            for c in clients:
                if left[c]:
                    s, der, p_max = next(pairs)
                    k = len(jobs[c])
                    oid = f"bench-c{c:03d}-{k:05d}"
                    jobs[c].append(Job(s, der, oid, {"offer_id": oid, "der_id": der,
                                                     "steps": _steps(p_max, k)}))
                    left[c] -= 1
    return n_sessions, client_agg, jobs


# ------------------------------------------------------------------------------ the server
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: the tsodso command (``--tsodso``); default: the one beside this Python, else on PATH
_COMMAND: list[str] = []


def _tsodso() -> str:
    if _COMMAND:
        return _COMMAND[0]
    here = Path(sys.executable).with_name("tsodso")
    found = str(here) if here.exists() else shutil.which("tsodso")
    if not found:
        sys.exit("no tsodso command: pip install -e '.[platform]' first")
    return found


def _cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a live process (None if unknown)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """``tsodso serve`` in a subprocess (optionally under ``py-spy record``)."""

    def __init__(self, folder: Path, scenario: str, py_spy: str | None) -> None:
        self.folder = folder
        self.db = folder / "platform.sqlite"
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        pw = folder / "pw"
        pw.write_text(PASSWORD, encoding="utf-8")
        cmd = [_tsodso(), "serve", "--db", str(self.db), "--port", str(self.port),
               "--seed", scenario, "--seed-password-file", str(pw)]
        if py_spy:
            fmt = {".svg": "flamegraph", ".txt": "raw", ".json": "speedscope"}.get(
                Path(py_spy).suffix, "flamegraph")
            cmd = ["py-spy", "record", "--format", fmt, "-o", py_spy, "--", *cmd]
        self.log = (folder / "server.log").open("w", encoding="utf-8")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid: int | None = None if py_spy else self.proc.pid

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        """Seconds until ``GET /openapi.json`` answers."""
        import httpx

        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server stopped (exit {self.proc.returncode}):\n"
                                   f"{self.tail()}")
            try:
                if httpx.get(self.base + "/openapi.json", timeout=2).status_code == 200:
                    if self.pid is None:  # under py-spy: the service is its child
                        self.pid = self._child()
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within {timeout_s:.0f} s:\n"
                           f"{self.tail()}")

    def _child(self) -> int | None:
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            return int(kids.split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def tail(self, n: int = 30) -> str:
        self.log.flush()
        lines = (self.folder / "server.log").read_text(encoding="utf-8").splitlines()
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        """Stop the service (Ctrl-C, then SIGKILL after 60 s); only our own processes."""
        if self.proc.poll() is None:
            target = self.pid if self.pid not in (None, self.proc.pid) else self.proc.pid
            try:
                os.kill(target, signal.SIGINT)
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                if self.pid not in (None, self.proc.pid):
                    with contextlib.suppress(OSError):
                        os.kill(self.pid, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def add_keys(server: Server, aggs: list[str]) -> dict[str, str]:
    """One API key per aggregator, from ``tsodso platform add-key`` (run side by side)."""
    procs = {a: subprocess.Popen([_tsodso(), "platform", "add-key", a, "--name", "bench",
                                  "--db", str(server.db)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for a in aggs}
    keys = {}
    for agg, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"add-key {agg} failed: {err.strip()}")
        keys[agg] = out.strip().splitlines()[-1]
    return keys


def verify_audit(db: Path) -> dict[str, Any]:
    proc = subprocess.run([_tsodso(), "platform", "verify-audit", "--db", str(db)],
                          capture_output=True, text=True, timeout=600)
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        out = {"ok": False, "records": None, "reason": proc.stderr.strip()[-300:]}
    out["exit_code"] = proc.returncode
    return out


# ------------------------------------------------------------------------------ clients
async def login(client: Any, username: str) -> dict[str, str]:
    r = await client.post("/token", data={"username": username, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def open_sessions(base: str, n: int, timeout: float, scenario: str = "default"
                        ) -> list[int]:
    """``n`` sessions opened by the market operator (8 requests at a time)."""
    import httpx

    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=base, timeout=timeout) as client:
        client.headers.update(await login(client, "market-operator"))
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> int:
            async with sem:
                r = await client.post("/api/sessions", json={
                    "name": f"bench-{i}", "scenario": scenario, "scheme": "tso_only",
                    "gate_open": (now - timedelta(hours=1)).isoformat(),
                    "gate_close": (now + timedelta(hours=2)).isoformat()})
                if r.status_code != 201:
                    raise RuntimeError(f"POST /api/sessions: {r.status_code} {r.text[:300]}")
                return int(r.json()["id"])

        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def run_client(c: int, agg: str, client: Any, jobs: list[Job], sids: list[int],
                     start: asyncio.Event, stop_at: list[float], out: list[Result]) -> None:
    await start.wait()
    for job in jobs:
        if time.perf_counter() > stop_at[0]:  # past the deadline: the rest is not sent
            return
        t0 = time.perf_counter()
        pk, detail = None, ""
        try:
            r = await client.post(OFFERS_PATH.format(sid=sids[job.session]), json=job.body)
            status: int | str = r.status_code
            if status == 201:
                got = r.json()
                pk = int(got["id"])
                if (got["offer_id"], got["der_id"]) != (job.offer_id, job.der_id):
                    status, detail = "201-wrong-body", r.text[:200]
            else:
                detail = r.text[:200]
        except Exception as err:  # noqa: BLE001 - a failed request is a result
            status, detail = type(err).__name__, str(err)[:200]
        out.append(Result(c, agg, job.session, job.offer_id, job.der_id, status,
                          time.perf_counter() - t0, pk, detail))


async def submit_all(base: str, client_agg: list[str], jobs: list[list[Job]],
                     sids: list[int], auth: str, keys: dict[str, str], timeout: float,
                     deadline: float, server_pid: int | None
                     ) -> tuple[list[Result], float, float, float | None, list[float]]:
    """Every client's offers: (results, wall s, clients' CPU s, server's CPU s, login
    latencies s); the CPU and wall times leave the logins out."""
    import httpx

    clients = [httpx.AsyncClient(base_url=base, timeout=timeout) for _ in client_agg]
    logins: list[float] = []
    try:
        if auth == "key":
            for client, agg in zip(clients, client_agg, strict=True):
                client.headers["X-API-Key"] = keys[agg]
        else:  # each simulated client logs in itself (all at once)
            async def log_in(client: Any, agg: str) -> None:
                t0 = time.perf_counter()
                client.headers.update(await login(client, agg))
                logins.append(time.perf_counter() - t0)

            await asyncio.gather(*(log_in(cl, a) for cl, a in zip(clients, client_agg,
                                                                   strict=True)))
        out: list[Result] = []
        start, stop_at = asyncio.Event(), [math.inf]
        tasks = [asyncio.create_task(run_client(c, agg, clients[c], jobs[c], sids, start,
                                                stop_at, out))
                 for c, agg in enumerate(client_agg)]
        await asyncio.sleep(0.1)  # every task waits at the start line
        server0, cpu0, t0 = _cpu_s(server_pid), time.process_time(), time.perf_counter()
        stop_at[0] = t0 + deadline
        start.set()
        await asyncio.gather(*tasks)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        server1 = _cpu_s(server_pid)
    finally:
        await asyncio.gather(*(cl.aclose() for cl in clients))
    server_cpu = None if server0 is None or server1 is None else server1 - server0
    return out, wall, cpu, server_cpu, logins


async def read_back(base: str, headers: dict[str, dict[str, str]], sids: list[int],
                    timeout: float) -> tuple[list[dict[str, Any]], int]:
    """Every offer each aggregator sees in the sessions, through the API (4 requests at a
    time, each tried 3 times): (rows, lists that could not be read)."""
    import httpx

    rows: list[dict[str, Any]] = []
    failed = 0
    sem = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=base, timeout=timeout) as client:
        async def one(agg: str, sid: int) -> None:
            nonlocal failed
            for attempt in range(3):
                try:
                    async with sem:
                        r = await client.get(OFFERS_PATH.format(sid=sid), headers=headers[agg])
                    r.raise_for_status()
                    rows.extend({"aggregator": agg, **o} for o in r.json())
                    return
                except httpx.HTTPError:
                    await asyncio.sleep(1 + attempt)
            failed += 1

        await asyncio.gather(*(one(a, s) for a in headers for s in sids))
    return rows, failed


async def race_probe(base: str, headers: dict[str, dict[str, str]],
                     ports: dict[str, list[tuple[str, float]]], n: int, ders_per_agg: int,
                     timeout: float, scenario: str = "default") -> dict[str, Any]:
    """Concurrent submissions that the uniqueness rules must turn into one 201 each."""
    import httpx

    sid = (await open_sessions(base, 1, timeout, scenario))[0]
    groups: list[tuple[str, str, list[dict[str, Any]]]] = []
    for agg, ders in ports.items():
        chosen = ders[:ders_per_agg]
        for j, (der, p_max) in enumerate(chosen):  # same DER, different offer ids
            groups.append(("same DER", agg, [
                {"offer_id": f"race-der{j}-{i}", "der_id": der, "steps": _steps(p_max, i)}
                for i in range(n)]))
        rest = ders[ders_per_agg:ders_per_agg + n]  # same offer id, different DERs
        if len(rest) >= 2:
            groups.append(("same offer id", agg, [
                {"offer_id": "race-id", "der_id": der, "steps": _steps(p_max, i)}
                for i, (der, p_max) in enumerate(rest)]))
    clients = [[httpx.AsyncClient(base_url=base, timeout=timeout, headers=headers[agg])
                for _ in bodies] for _, agg, bodies in groups]
    try:
        async def post(client: Any, body: dict[str, Any]) -> int | str:
            try:
                r = await client.post(OFFERS_PATH.format(sid=sid), json=body)
                return r.status_code
            except Exception as err:  # noqa: BLE001
                return type(err).__name__

        answers = []  # one group at a time: its N requests at once
        for cls, (_, _, bodies) in zip(clients, groups, strict=True):
            answers.append(await asyncio.gather(*(
                post(cl, b) for cl, b in zip(cls, bodies, strict=True))))
    finally:
        await asyncio.gather(*(cl.aclose() for cls in clients for cl in cls))
    out: dict[str, Any] = {"session": sid, "per_group": n, "ders_per_aggregator": ders_per_agg}
    for kind in ("same DER", "same offer id"):
        got = [(Counter(a), len(a)) for (k, _, _), a in zip(groups, answers, strict=True)
               if k == kind]
        statuses: Counter = Counter()
        for counts, _ in got:
            statuses.update(counts)
        out[kind] = {"groups": len(got), "requests": sum(m for _, m in got),
                     "groups_not_exactly_one_201": sum(c[201] != 1 for c, _ in got),
                     "status": {str(k): v for k, v in sorted(statuses.items(), key=str)}}
    out["requests"] = sum(len(b) for _, _, b in groups)
    return out


# ------------------------------------------------------------------------------ checks
def db_check(db: Path, sids: list[int], accepted: set[tuple[int, str, str]]
             ) -> dict[str, Any]:
    """Read the database file: stored offers of ``sids`` against the 201 answers."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(sids))
        rows = con.execute(
            f"SELECT o.session_id, g.name, o.offer_id, o.der_id, o.status FROM offers o "
            f"JOIN organisations g ON g.id = o.organisation_id WHERE o.session_id IN "
            f"({marks})", sids).fetchall()
        audit = dict(con.execute(
            "SELECT status_code, COUNT(*) FROM audit_log WHERE method = 'POST' AND path "
            "LIKE '/api/sessions/%/offers' GROUP BY status_code").fetchall())
    finally:
        con.close()
    keys = Counter((s, org, oid) for s, org, oid, _, _ in rows)
    ders = Counter((s, der) for s, _, _, der, st in rows if st == "active")
    stored = set(keys)
    return {"stored": len(rows),
            "lost": len(accepted - stored),
            "extra": len(stored - accepted),
            "duplicated_ids": sum(n - 1 for n in keys.values()),
            "duplicated_active_ders": sum(n - 1 for n in ders.values()),
            "audit_offer_posts": {str(k): v for k, v in sorted(audit.items())}}


def api_check(rows: list[dict[str, Any]], sid_index: dict[int, int],
              accepted: set[tuple[int, str, str]]) -> dict[str, Any]:
    keys = Counter((r["session_id"], r["aggregator"], r["offer_id"]) for r in rows
                   if r["session_id"] in sid_index)
    seen = set(keys)
    return {"read": sum(keys.values()), "lost": len(accepted - seen),
            "extra": len(seen - accepted), "duplicated": sum(n - 1 for n in keys.values())}


def _ms(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values) * 1e3, q)) if values else float("nan")


# ------------------------------------------------------------------------------ one run
def run(args: argparse.Namespace, auth: str, folder: Path) -> dict[str, Any]:
    ports = portfolios(args.scenario)
    n_sessions, client_agg, jobs = make_plan(ports, args.clients, args.offers)
    say = _say(args)
    say(f"[{auth}] {args.clients} clients, {args.offers} offers, {n_sessions} sessions, "
        f"{sum(len(v) for v in ports.values())} offerable DERs of {len(ports)} aggregators;"
        f" folder {folder}")
    server = Server(folder, args.scenario, args.py_spy)
    try:
        ready_s = server.wait_ready()
        say(f"[{auth}] server up in {ready_s:.1f} s (pid {server.pid}, {server.base})")
        t0 = time.perf_counter()
        keys = add_keys(server, list(ports))  # the race probe reads with keys too
        keys_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        sids = asyncio.run(open_sessions(server.base, n_sessions, args.timeout, args.scenario))
        sessions_s = time.perf_counter() - t0
        say(f"[{auth}] keys {keys_s:.1f} s, {n_sessions} sessions {sessions_s:.1f} s; "
            "submitting")
        load0 = os.getloadavg()[0]
        results, wall, cpu_client, cpu_server, logins = asyncio.run(submit_all(
            server.base, client_agg, jobs, sids, auth, keys, args.timeout, args.deadline,
            server.pid))
        load1 = os.getloadavg()[0]
        say(f"[{auth}] {len(results)} answers in {wall:.1f} s; checking")
        key_headers = {a: {"X-API-Key": keys[a]} for a in ports}
        api_rows, api_unread = asyncio.run(read_back(server.base, key_headers, sids,
                                                     args.timeout))
        race = (asyncio.run(race_probe(server.base, key_headers, ports, args.race,
                                       args.race_ders, args.timeout, args.scenario))
                if args.race > 0 else None)
    except BaseException:
        print(f"server log (tail):\n{server.tail()}", file=sys.stderr)
        raise
    finally:
        server.stop()
    audit = verify_audit(server.db)

    accepted = {(sids[r.session], r.aggregator, r.offer_id) for r in results
                if r.status == 201}
    statuses = Counter(r.status for r in results)
    errors = {str(k): v for k, v in sorted(statuses.items(), key=str) if k != 201}
    pks = Counter(r.pk for r in results if r.pk is not None)
    stored = db_check(server.db, sids, accepted)
    api = api_check(api_rows, {s: i for i, s in enumerate(sids)}, accepted)
    api["lists_not_read"] = api_unread
    lat = [r.latency_s for r in results]
    n_logins = 1 + (1 if race else 0) + (len(logins) if auth == "token" else 0)
    expected_audit = n_logins + n_sessions + (1 if race else 0) + len(results) + (
        race["requests"] if race else 0)
    figures: dict[str, Any] = {
        "auth": auth, "clients": args.clients, "offers": args.offers,
        "submitted": len(results), "not_sent": sum(map(len, jobs)) - len(results),
        "sessions": n_sessions,
        "wall_s": round(wall, 3), "offers_per_s": round(len(results) / wall, 1),
        "latency_ms": {q: round(_ms(lat, p), 1) for q, p in
                       (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "server_cpu_s": None if cpu_server is None else round(cpu_server, 1),
        "client_cpu_s": round(cpu_client, 1),
        "load_average": [round(load0, 2), round(load1, 2)],
        "accepted_201": statuses.get(201, 0), "errors": errors,
        "duplicate_pks": sum(n - 1 for n in pks.values()),
        "lost": stored["lost"], "extra": stored["extra"],
        "duplicated": stored["duplicated_ids"] + stored["duplicated_active_ders"],
        "db": stored, "api": api,
        "audit": {"ok": bool(audit.get("ok")) and audit.get("exit_code") == 0,
                  "records": audit.get("records"), "expected": expected_audit,
                  "reason": audit.get("reason", "")},
        "setup_s": {"server": round(ready_s, 1), "keys": round(keys_s, 1),
                    "sessions": round(sessions_s, 1)},
        "race": race,
    }
    if auth == "token":
        figures["login_ms"] = {"n": len(logins), "p50": round(_ms(logins, 50), 1),
                               "max": round(_ms(logins, 100), 1)}
    samples = [r for r in results if r.status != 201][:5]
    if samples:
        figures["error_samples"] = [{"status": str(r.status), "detail": r.detail}
                                    for r in samples]
    # the must-show: every offer sent, answered 201, stored once, nothing else
    figures["offers_ok"] = (not errors and figures["not_sent"] == 0 and figures["lost"] == 0
                            and figures["extra"] == 0 and figures["duplicated"] == 0
                            and figures["duplicate_pks"] == 0 and api_unread == 0
                            and api["lost"] == api["extra"] == api["duplicated"] == 0)
    # an intact chain with one record per state-changing request (a 500 must be there too)
    figures["audit_ok"] = (figures["audit"]["ok"] and audit.get("records") == expected_audit
                           and (audit.get("records") or 0) >= len(results))
    figures["race_ok"] = race is None or all(
        race[k]["groups_not_exactly_one_201"] == 0 and set(race[k]["status"]) <= {"201", "409"}
        for k in ("same DER", "same offer id"))
    figures["ok"] = figures["offers_ok"] and figures["audit_ok"] and figures["race_ok"]
    return figures


def _say(args: argparse.Namespace) -> Any:
    def say(text: str) -> None:
        print(text, file=sys.stderr if args.json == "-" else sys.stdout, flush=True)
    return say


def table(runs: list[dict[str, Any]]) -> str:
    def race_line(r: dict[str, Any], kind: str) -> str:
        if not r["race"]:
            return "-"
        g = r["race"][kind]
        return f"{g['groups_not_exactly_one_201']}/{g['groups']} bad " + " ".join(
            f"{k}:{v}" for k, v in g["status"].items())

    rows: list[tuple[str, Any]] = [
        ("auth", lambda r: r["auth"]),
        ("clients", lambda r: r["clients"]),
        ("offers submitted", lambda r: r["submitted"]),
        ("not sent (deadline)", lambda r: r["not_sent"]),
        ("sessions", lambda r: r["sessions"]),
        ("wall time s", lambda r: f"{r['wall_s']:.2f}"),
        ("throughput offers/s", lambda r: f"{r['offers_per_s']:.1f}"),
        ("latency p50 ms", lambda r: f"{r['latency_ms']['p50']:.1f}"),
        ("latency p90 ms", lambda r: f"{r['latency_ms']['p90']:.1f}"),
        ("latency p99 ms", lambda r: f"{r['latency_ms']['p99']:.1f}"),
        ("latency max ms", lambda r: f"{r['latency_ms']['max']:.1f}"),
        ("server / client CPU s", lambda r: f"{r['server_cpu_s']} / {r['client_cpu_s']}"),
        ("load average before/after", lambda r: "{} / {}".format(*r["load_average"])),
        ("accepted (201)", lambda r: r["accepted_201"]),
        ("errors by status", lambda r: " ".join(f"{k}:{v}" for k, v in r["errors"].items())
         or "0"),
        ("stored (db / api)", lambda r: f"{r['db']['stored']} / {r['api']['read']}" + (
            f" ({r['api']['lists_not_read']} lists unread)" if r["api"]["lists_not_read"]
            else "")),
        ("lost (db / api)", lambda r: f"{r['lost']} / {r['api']['lost']}"),
        ("duplicated (db / api)", lambda r: f"{r['duplicated'] + r['duplicate_pks']} / "
                                            f"{r['api']['duplicated']}"),
        ("stored without 201 (db/api)", lambda r: f"{r['extra']} / {r['api']['extra']}"),
        ("audit records / expected", lambda r: f"{r['audit']['records']} / "
                                               f"{r['audit']['expected']}"),
        ("audit: offer POSTs", lambda r: " ".join(
            f"{k}:{v}" for k, v in r["db"]["audit_offer_posts"].items())),
        ("audit chain ok", lambda r: r["audit"]["ok"]),
        ("race: same DER", lambda r: race_line(r, "same DER")),
        ("race: same offer id", lambda r: race_line(r, "same offer id")),
        ("logins p50 / max ms", lambda r: f"{r['login_ms']['p50']:.0f} / "
                                          f"{r['login_ms']['max']:.0f}" if "login_ms" in r
         else "-"),
        ("offers ok (no loss/dup)", lambda r: r["offers_ok"]),
        ("audit ok (chain, count)", lambda r: r["audit_ok"]),
        ("race ok (one 201 each)", lambda r: r["race_ok"]),
    ]
    cells = [(label, [str(get(r)) for r in runs]) for label, get in rows]
    width = 2 + max(len(c) for _, values in cells for c in values)
    return "\n".join(f"{label:<28}" + "".join(f"{c:>{width}}" for c in values)
                     for label, values in cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--offers", type=int, default=10_000)
    parser.add_argument("--auth", choices=["key", "token", "both"], default="key",
                        help="API keys (machine clients), bearer tokens, or one run each")
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--race", type=int, default=8, metavar="N",
                        help="concurrent requests per group of the race probe (0: off)")
    parser.add_argument("--race-ders", type=int, default=3,
                        help="DERs per aggregator raced with the same DER")
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, s")
    parser.add_argument("--deadline", type=float, default=300.0,
                        help="stop sending offers after this many seconds (a jammed service)")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                        help="print the figures as JSON (or save them to FILE)")
    parser.add_argument("--py-spy", metavar="FILE", help="profile the server with py-spy")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--tsodso", metavar="PATH", help="the tsodso command to run "
                        "(default: the one beside this Python)")
    args = parser.parse_args()
    if args.tsodso:
        _COMMAND.append(args.tsodso)
    if args.clients < 1 or args.offers < args.clients:
        parser.error("give at least one client and at least one offer per client")

    runs = []
    for auth in (["key", "token"] if args.auth == "both" else [args.auth]):
        folder = Path(tempfile.mkdtemp(prefix=f"bench-platform-{auth}-"))
        try:
            runs.append(run(args, auth, folder))
        finally:
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    text = table(runs)
    if args.json == "-":
        print(text, file=sys.stderr)
        print(json.dumps(runs, indent=1))
    else:
        print(text)
        if args.json:
            Path(args.json).write_text(json.dumps(runs, indent=1), encoding="utf-8")
    for r in runs:
        for s in r.get("error_samples", []):
            print(f"[{r['auth']}] {s['status']}: {s['detail']}", file=sys.stderr)
    sys.exit(0 if all(r["ok"] for r in runs) else 1)


if __name__ == "__main__":
    main()

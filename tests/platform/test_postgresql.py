"""The platform on PostgreSQL: the same migrations, access rules, clearing and audit chain
as on SQLite, on a throwaway PostgreSQL cluster (the server's ``initdb``/``pg_ctl``, e.g.
Debian's ``postgresql`` package; CI installs it)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from platform_helpers import PASSWORD, A, B, Clock, Service, der_of, offer_body

pytest.importorskip("psycopg", reason="psycopg is in the test extra")


def _binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server on a Unix socket in a temporary folder, for this module."""
    bins = _binaries()
    if bins is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's initdb is missing (apt-get install postgresql)")
        pytest.skip("PostgreSQL's initdb is not installed (apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="tsodso-pg-", dir="/tmp"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as its own user
        shutil.chown(folder, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    subprocess.run([*prefix, str(bins / "initdb"), "-D", str(data), "-A", "trust", "-U",
                    "tsodso", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*prefix, str(bins / "pg_ctl"), "-D", str(data), "-w", "-l",
                    str(folder / "log"), "-o",
                    f"-k {folder} -p {port} -c listen_addresses='' -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://tsodso@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run([*prefix, str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_platform_runs_on_postgresql(postgres_url, tmp_path, default_system):
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from fastapi.testclient import TestClient

    from tsodso.platform import db
    from tsodso.platform.app import create_app
    from tsodso.platform.store import seed_scenario_parties

    clock = Clock()
    app = create_app(postgres_url, secret="p" * 40, data_dir=tmp_path, clock=clock,
                     gate_poll_s=0)
    maker = app.state.platform.maker
    with maker() as s:
        conn = s.connection()
        assert conn.dialect.name == "postgresql"
        assert compare_metadata(MigrationContext.configure(conn), db.Base.metadata) == []
    with maker.begin() as s:
        seed_scenario_parties(s, default_system, PASSWORD)
    svc = Service(TestClient(app), clock, app)
    sid = svc.open_session("tso_only")
    a = svc.post(A, f"/api/sessions/{sid}/offers",
                 json=offer_body(der_of(default_system, A), "x"))
    b = svc.post(B, f"/api/sessions/{sid}/offers",
                 json=offer_body(der_of(default_system, B), "x"))
    assert a.status_code == b.status_code == 201
    assert svc.post(A, f"/api/sessions/{sid}/offers", json=offer_body(
        der_of(default_system, A, k=1), "x")).status_code == 409
    assert svc.get(A, f"/api/offers/{b.json()['id']}").status_code == 404
    assert [o["id"] for o in svc.get("dso-bus9", f"/api/sessions/{sid}/offers").json()] == [
        a.json()["id"]]
    state = svc.post("market-operator", f"/api/sessions/{sid}/close?wait=true").json()
    assert state["state"] == "cleared", state
    awards = svc.get(A, f"/api/sessions/{sid}/awards").json()
    assert len(awards) == 24 and {x["der_id"] for x in awards} == {
        der_of(default_system, A).der_id}
    assert svc.get("auditor", "/api/audit/verify").json()["ok"]
    with maker() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(db.Price)) > 0

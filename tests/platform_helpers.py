"""Helpers of the operator platform's tests (tests/platform): a service on a fresh SQLite
file with the parties of the ``default`` scenario, a market clock the tests move, and
helpers to log in and open sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PASSWORD = "password123"
A, B, C = "agg_case33bw@9", "agg_case33bw@10", "agg_case69@4#1"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The platform's market clock (UTC), moved by tests."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Service:
    """A running service (TestClient), its clock and its database."""

    client: Any
    clock: Clock
    app: Any
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    def auth(self, user: str) -> dict[str, str]:
        """Bearer headers of ``user`` (logged in once)."""
        if user not in self.tokens:
            r = self.client.post("/token", data={"username": user, "password": PASSWORD})
            assert r.status_code == 200, r.text
            self.tokens[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return self.tokens[user]

    def get(self, user: str, url: str, **kw: Any) -> Any:
        return self.client.get(url, headers=self.auth(user), **kw)

    def post(self, user: str, url: str, **kw: Any) -> Any:
        return self.client.post(url, headers=self.auth(user), **kw)

    def put(self, user: str, url: str, **kw: Any) -> Any:
        return self.client.put(url, headers=self.auth(user), **kw)

    def delete(self, user: str, url: str, **kw: Any) -> Any:
        return self.client.delete(url, headers=self.auth(user), **kw)

    def open_session(self, scheme: str = "tso_only", hours: float = 1.0) -> int:
        """A session on ``default`` whose gate is open from now for ``hours``."""
        now = self.clock.now
        r = self.post("market-operator", "/api/sessions", json={
            "name": f"day-ahead {scheme}", "scenario": "default", "scheme": scheme,
            "gate_open": now.isoformat(), "gate_close": (now + timedelta(hours=hours)
                                                         ).isoformat()})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def count(self, model: Any) -> int:
        import sqlalchemy as sa

        with self.app.state.platform.maker() as s:
            return int(s.scalar(sa.select(sa.func.count()).select_from(model)))


def make_service(tmp_path: Any, gate_poll_s: float = 0.0) -> Service:
    from fastapi.testclient import TestClient

    from tsodso.io import load
    from tsodso.platform.app import create_app
    from tsodso.platform.store import seed_scenario_parties

    clock = Clock()
    app = create_app(str(tmp_path / "platform.sqlite"), secret="s" * 40,
                     data_dir=tmp_path / "data", clock=clock, gate_poll_s=gate_poll_s)
    with app.state.platform.maker.begin() as s:
        seed_scenario_parties(s, load("default"), PASSWORD)
    return Service(TestClient(app), clock, app)


def der_of(system: Any, aggregator: str, kind: str = "demand_response", k: int = 0) -> Any:
    """The ``k``-th DER of ``kind`` of ``aggregator`` (a row of ``system.ders``)."""
    d = system.ders
    return d[(d.aggregator_id == aggregator) & (d.kind == kind)].iloc[k]


def offer_body(der: Any, offer_id: str, price: float = 30.0, share: float = 1.0
               ) -> dict[str, Any]:
    """An offer of ``share`` of the DER's rating at ``price``, in two equal steps."""
    q = float(der.p_max_mw) * share / 2
    return {"offer_id": offer_id, "der_id": der.der_id,
            "steps": [{"quantity_mw": q, "price_per_mwh": price},
                      {"quantity_mw": q, "price_per_mwh": price + 20.0}]}

"""The database schema comes from the Alembic migrations, and they give exactly the
tables the code declares."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tsodso.platform import db


def test_migrations_build_the_declared_schema(tmp_path):
    engine = db.make_engine(str(tmp_path / "m.sqlite"))
    db.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.Base.metadata)
        assert diff == []
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert version == "0002"
    db.upgrade(engine)  # upgrading again changes nothing
    names = set(sa.inspect(engine).get_table_names())
    assert {"organisations", "users", "api_keys", "market_sessions", "offers", "awards",
            "prices", "schedules", "statements", "messages", "activations",
            "emergency_requests", "audit_log", "alembic_version"} == names

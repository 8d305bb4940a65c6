"""Alembic environment of the operator platform's database.

Run through :func:`tsodso.platform.db.upgrade` (a connection in ``config.attributes``), or
with the ``alembic`` command and ``-x url=SQLALCHEMY_URL``.
"""

from __future__ import annotations

from alembic import context

from tsodso.platform.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    context.configure(url=context.get_x_argument(as_dictionary=True).get("url"),
                      target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or "platform.sqlite"
    with make_engine(url).connect() as conn:
        _run(conn)
        conn.commit()

"""The operator platform: a multi-party HTTP service where the TSO, DSOs, aggregators, the
market operator and auditors take part in market sessions, each seeing only what is
theirs.

``tsodso serve`` starts it (needs the ``platform`` extra: FastAPI, Uvicorn, Alembic,
argon2-cffi, PyJWT). Modules:

- :mod:`~tsodso.platform.offers` offers and how they enter the market's data (no web
  dependency; ``tsodso run --offers`` uses it too);
- :mod:`~tsodso.platform.clearing` a session cleared by a coordination scheme;
- :mod:`~tsodso.platform.db` tables and migrations; :mod:`~tsodso.platform.auth` logins,
  tokens, keys, scopes; :mod:`~tsodso.platform.access` who sees what (the one access
  layer); :mod:`~tsodso.platform.audit` the tamper-evident audit log;
- :mod:`~tsodso.platform.store` the operations; :mod:`~tsodso.platform.app` the service;
  :mod:`~tsodso.platform.routes` its routes and web page.
"""

"""``tsodso serve`` and ``tsodso platform ...``: run the operator platform and manage its
parties from the command line.

The service's libraries (FastAPI, Uvicorn, Alembic, ...) are the ``platform`` extra; these
commands say so clearly when it is missing. Nothing here is imported by ``tsodso`` until
a command runs.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, help="Manage the operator platform's database: "
                  "parties, users, API keys, the audit chain.")

DbOpt = Annotated[str, typer.Option("--db", help="SQLAlchemy URL or SQLite file of the "
                                                 "platform.")]
_DEFAULT_DB = "tsodso-platform/platform.sqlite"


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _need_extra() -> None:
    missing = []
    for module in ("fastapi", "uvicorn", "alembic", "argon2", "jwt", "python_multipart"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        _fail(f"the operator platform needs the platform extra (missing: {', '.join(missing)})"
              ": pip install \"tsodso[platform]\"")


def _prepare_db(url: str) -> Any:
    """The migrated database's session maker (a SQLite file's folder is created)."""
    from tsodso.platform import db

    if "://" not in url:
        Path(url).resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(url)
    db.upgrade(engine)
    return db.make_sessionmaker(engine)


def _secret(path: Path) -> str:
    """The token secret: ``TSODSO_SECRET``, else the file (created, owner-only)."""
    env = os.environ.get("TSODSO_SECRET")
    if env:
        if len(env) < 32:
            _fail("TSODSO_SECRET must have at least 32 characters")
        return env
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value, encoding="utf-8")
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return value


def serve(
    db_url: DbOpt = _DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: Annotated[str | None, typer.Option(help="Folder of the sessions' run folders "
                                                      "and the token secret (default: "
                                                      "beside a SQLite file).")] = None,
    seed: Annotated[str | None, typer.Option(help="Register the parties of this scenario "
                                                  "first (see tsodso platform seed).")] = None,
    seed_password_file: Annotated[str | None, typer.Option(
        help="With --seed: a file holding the seeded users' password.")] = None,
) -> None:
    """Run the operator platform: the HTTP API (OpenAPI at /docs), its web page (/) and
    gate closure of market sessions, on SQLite in a file (default) or any SQLAlchemy URL;
    the database is migrated to the latest schema first. Needs the platform extra."""
    _need_extra()
    import uvicorn

    from tsodso.platform.app import create_app

    base = Path(data_dir) if data_dir else (
        Path(db_url).resolve().parent if "://" not in db_url else Path.cwd() / "tsodso-platform")
    maker = _prepare_db(db_url)
    if seed is not None:
        _seed(maker, seed, seed_password_file)
    application = create_app(db_url, secret=_secret(base / "secret"), data_dir=base,
                             migrate=False)
    typer.echo(f"tsodso platform on http://{host}:{port} (API docs /docs), database "
               f"{db_url}, data {base}", err=True)
    uvicorn.run(application, host=host, port=port, log_level="warning")


def _seed(maker: Any, scenario: str, password_file: str | None) -> dict[str, str]:
    from tsodso.errors import TsodsoError
    from tsodso.io import load
    from tsodso.platform.store import seed_scenario_parties

    if password_file is None:
        _fail("give --password-file: the seeded users' password (8 characters or more)")
    password = Path(password_file).read_text(encoding="utf-8").strip()
    if len(password) < 8:
        _fail(f"{password_file}: the password must have at least 8 characters")
    try:
        system = load(scenario)
    except TsodsoError as err:
        _fail(str(err))
    with maker.begin() as s:
        return seed_scenario_parties(s, system, password)


@app.command()
def seed(
    scenario: Annotated[str, typer.Argument(help="Scenario whose parties to register.")],
    password_file: Annotated[str | None, typer.Option(help="File holding the users' "
                                                           "password.")] = None,
    db_url: DbOpt = _DEFAULT_DB,
) -> None:
    """Register the scenario's parties (the TSO, each DSO with its feeders, each
    aggregator) with a market operator and an auditor; each gets a user named after it."""
    _need_extra()
    orgs = _seed(_prepare_db(db_url), scenario, password_file)
    typer.echo(json.dumps(orgs, indent=1))


@app.command("add-org")
def add_org(
    name: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Option(help="tso, dso, aggregator, market_operator or "
                                           "auditor.")],
    party: Annotated[str, typer.Option(help="Its party in the scenario's messages "
                                            "(aggregator id, DSO name).")] = "",
    area: Annotated[str, typer.Option(help="A DSO's feeders, comma-separated.")] = "",
    db_url: DbOpt = _DEFAULT_DB,
) -> None:
    """Register an organisation."""
    _need_extra()
    from tsodso.platform.store import PlatformError, add_organisation

    try:
        with _prepare_db(db_url).begin() as s:
            org = add_organisation(s, name, role, party,
                                   [f for f in area.split(",") if f.strip()])
            typer.echo(json.dumps({"id": org.id, "name": org.name, "role": org.role,
                                   "party": org.party, "area": org.area}))
    except PlatformError as err:
        _fail(str(err.detail))


def _org(s: Any, name: str) -> Any:
    import sqlalchemy as sa

    from tsodso.platform import db

    org = s.scalars(sa.select(db.Organisation).where(db.Organisation.name == name)).first()
    if org is None:
        _fail(f"no organisation '{name}' (tsodso platform add-org)")
    return org


@app.command("add-user")
def add_user_cmd(
    organisation: Annotated[str, typer.Argument()],
    username: Annotated[str, typer.Argument()],
    password_file: Annotated[str, typer.Option(help="File holding the password.")],
    db_url: DbOpt = _DEFAULT_DB,
) -> None:
    """Add a user to an organisation."""
    _need_extra()
    from tsodso.platform.store import PlatformError, add_user

    password = Path(password_file).read_text(encoding="utf-8").strip()
    if len(password) < 8:
        _fail("the password must have at least 8 characters")
    try:
        with _prepare_db(db_url).begin() as s:
            add_user(s, _org(s, organisation), username, password)
    except PlatformError as err:
        _fail(str(err.detail))
    typer.echo(f"user {username} of {organisation} added")


@app.command("add-key")
def add_key(
    organisation: Annotated[str, typer.Argument()],
    scopes: Annotated[str | None, typer.Option(help="Comma-separated scopes (default: "
                                                    "all of the role's).")] = None,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    db_url: DbOpt = _DEFAULT_DB,
) -> None:
    """Create an API key for an organisation's machine client (printed once)."""
    _need_extra()
    from tsodso.platform.store import PlatformError, add_api_key

    chosen = None if scopes is None else [x.strip() for x in scopes.split(",") if x.strip()]
    try:
        with _prepare_db(db_url).begin() as s:
            key = add_api_key(s, _org(s, organisation), name, chosen)
    except PlatformError as err:
        _fail(str(err.detail))
    typer.echo(key)


@app.command("verify-audit")
def verify_audit(db_url: DbOpt = _DEFAULT_DB) -> None:
    """Check the audit log's hash chain (exit status 1 if it is broken)."""
    _need_extra()
    from tsodso.platform.audit import verify_chain

    with _prepare_db(db_url)() as s:
        check = verify_chain(s)
    typer.echo(json.dumps({"ok": check.ok, "records": check.records,
                           "broken_at": check.broken_at, "reason": check.reason}))
    if not check.ok:
        raise typer.Exit(1)


@app.command("revoke-key")
def revoke_key(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (the part after tsk_).")],
    db_url: DbOpt = _DEFAULT_DB,
) -> None:
    """Revoke an API key: requests with it are refused (401) from now on."""
    _need_extra()
    import sqlalchemy as sa

    from tsodso.platform import db

    with _prepare_db(db_url).begin() as s:
        row = s.scalars(sa.select(db.ApiKey).where(db.ApiKey.prefix == prefix)).first()
        if row is None:
            _fail(f"no API key with prefix '{prefix}'")
        row.revoked = True
    typer.echo(f"API key {prefix} revoked")

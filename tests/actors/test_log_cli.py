"""``tsodso log``: a run's message log as a table or JSON."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from typer.testing import CliRunner

from tsodso.actors import LOG_FILE_NAME, MESSAGE_TYPES, MessageLog
from tsodso.cli import app

runner = CliRunner()


@pytest.fixture
def run_dir(tmp_path, messages):
    folder = tmp_path / "run"
    folder.mkdir()
    with MessageLog(folder / LOG_FILE_NAME, run_id="r1") as log:
        log.append(messages, "admm")
        log.append(messages[:2], "common")
    return folder


def test_table(run_dir):
    result = runner.invoke(app, ["log", str(run_dir)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "15 message(s)" in out and "r1-0000001" in out and "r1-0000015" in out
    for kind in MESSAGE_TYPES:
        assert kind in out
    assert "aggregator:agg1" in out and "dso:case33bw@9" in out
    assert "4-6" in out  # periods of the aggregator's messages
    assert "messages by kind" in out and "total" in out


def test_json_and_filters(run_dir):
    result = runner.invoke(app, ["log", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["messages"]) == 15
    assert data["summary"]["offer"]["count"] == 2
    assert sum(s["bytes"] for s in data["summary"].values()) == sum(
        m["bytes"] for m in data["messages"])
    first = data["messages"][0]
    assert first["id"] == "r1-0000001" and first["kind"] == "availability_schedule"
    assert "payload" not in first
    result = runner.invoke(app, ["log", str(run_dir / LOG_FILE_NAME), "--kind", "offer",
                                 "--scheme", "common", "--json"])
    data = json.loads(result.stdout)
    assert [m["id"] for m in data["messages"]] == ["r1-0000015"]
    assert data["summary"] == {"offer": {"count": 1, "bytes": data["messages"][0]["bytes"]}}
    result = runner.invoke(app, ["log", str(run_dir), "--sender", "dso:case33bw@9",
                                 "--recipient", "tso", "--json"])
    data = json.loads(result.stdout)
    assert {m["sender"] for m in data["messages"]} == {"dso:case33bw@9"}
    assert len(data["messages"]) == 5


@pytest.mark.parametrize(("args", "message"), [
    (["missing"], "error: no run folder or message log"),
    (["EMPTY"], f"error: no message log in .* .expected {LOG_FILE_NAME}."),
    (["OTHER"], "error: .*other.sqlite is not a tsodso message log: it has no table"),
    (["RUN", "--kind", "bid"], "error: unknown message kind 'bid'; kinds: availability_schedule"),
    (["RUN", "--sender", "dso"], "error: cannot read party 'dso'"),
])
def test_errors_are_one_line(tmp_path, run_dir, args, message):
    (tmp_path / "empty").mkdir()
    con = sqlite3.connect(tmp_path / "other.sqlite")
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    paths = {"missing": str(tmp_path / "missing"), "EMPTY": str(tmp_path / "empty"),
             "OTHER": str(tmp_path / "other.sqlite"), "RUN": str(run_dir)}
    result = runner.invoke(app, ["log", *[paths.get(a, a) for a in args]])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1, result.output
    assert re.match(message, result.output), result.output

"""The durable message log: ids, append-only, atomic batches, queries, crash safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import sqlalchemy as sa

from tsodso.actors import (
    MESSAGE_TYPES,
    InterfaceSchedule,
    MessageLog,
    Offer,
    Party,
    new_envelope,
)
from tsodso.actors.log import COLUMNS
from tsodso.errors import TsodsoError


def _schedules(n: int, feeder: str = "f1", iteration: int = 0) -> list[InterfaceSchedule]:
    env = new_envelope(Party.dso(feeder), "tso", periods=4, period_hours=1.0,
                       iteration=iteration)
    return [InterfaceSchedule(env, feeder, np.arange(4.0) + i) for i in range(n)]


def test_ids_are_deterministic_and_continue_after_reopen(tmp_path, messages):
    with MessageLog(run_id="r") as a, MessageLog(run_id="r") as b:
        ids_a = [m.envelope.id for m in a.append(messages, "s")]
        ids_b = [m.envelope.id for m in b.append(messages, "s")]
    assert ids_a == ids_b == [f"r-{i:07d}" for i in range(1, len(messages) + 1)]
    path = tmp_path / "log.sqlite"
    with MessageLog(path, run_id="r") as log:
        first = log.append(messages, "s")
        assert [m.envelope.id for m in first] == ids_a
        assert all(m.envelope.conversation == m.envelope.id for m in first)  # new ones
    with MessageLog(path, run_id="r") as log:
        assert log.last_seq == len(messages)
        more = log.append(_schedules(2), "s")
        assert [m.envelope.id for m in more] == [f"r-{len(messages) + i:07d}" for i in (1, 2)]
        assert log.frame().seq.tolist() == list(range(1, len(messages) + 3))
        assert log.messages()[: len(first)] == first  # decoded exactly


def test_logged_messages_must_be_new(messages):
    with MessageLog() as log:
        sent = log.append(messages[:1], "s")
        with pytest.raises(TsodsoError, match="already logged"):
            log.append(sent, "s")
        with pytest.raises(TsodsoError, match="only messages can be logged"):
            log.append([messages[1], "hello"], "s")  # type: ignore[list-item]
        assert log.count() == 1


def test_append_only(tmp_path, messages):
    path = tmp_path / "log.sqlite"
    with MessageLog(path) as log:
        log.append(messages, "s")
    con = sqlite3.connect(path)
    try:
        for sql in ("UPDATE messages SET kind = 'offer'", "DELETE FROM messages",
                    "DELETE FROM messages WHERE seq = 1"):
            with pytest.raises(sqlite3.DatabaseError, match="the message log is append-only"):
                con.execute(sql)
            con.rollback()
    finally:
        con.close()
    with MessageLog(path) as log:
        assert log.count() == len(messages) and log.integrity_ok()
        with log._engine.begin() as conn, pytest.raises(sa.exc.IntegrityError,  # memory too
                                                         match="append-only"):
            conn.execute(sa.text("UPDATE messages SET bytes = 0"))
    assert not [name for name in dir(MessageLog) if "delete" in name or "update" in name]


def test_batch_is_atomic(monkeypatch, messages):
    with MessageLog() as log:
        log.append(messages[:2], "s")
        real = MessageLog._rows

        def broken(self, batch, scheme, first):  # the batch's last row violates NOT NULL
            out, rows = real(self, batch, scheme, first)
            rows[-1]["kind"] = None
            return out, rows

        monkeypatch.setattr(MessageLog, "_rows", broken)
        with pytest.raises(TsodsoError, match="batch of 11 message.s. was not logged"):
            log.append(messages[2:], "s")
        assert log.count() == 2
        monkeypatch.undo()
        again = log.append(messages[2:], "s")  # numbering resumes where it was
        assert again[0].envelope.id == "run-0000003"
        assert log.count() == len(messages)


def test_summary_and_per_iteration(messages):
    with MessageLog() as log:
        sent = log.append(messages, "a")
        log.append(_schedules(3, iteration=1) + _schedules(2, iteration=2), "b")
        summary = log.summary()
        assert summary.index.name == "kind" and list(summary.columns) == ["count", "bytes"]
        assert list(summary.index) == sorted(MESSAGE_TYPES)
        assert summary.loc["interface_schedule", "count"] == 6
        assert summary["count"].sum() == len(messages) + 5
        frame = log.frame()
        assert summary["bytes"].sum() == frame.bytes.sum()
        a = log.summary("a")
        assert a["count"].tolist() == [1] * len(messages)
        assert a["bytes"].sum() == sum(len(log._rows([m], "a", 1)[1][0]["payload"])
                                       for m in messages)
        assert dict(zip(a.index, a["bytes"], strict=True))["offer"] == frame.bytes[
            (frame.kind == "offer")].iloc[0]
        per = log.per_iteration("b")
        assert list(per.columns) == ["iteration", "count", "bytes"]
        assert per.iteration.tolist() == [1, 2] and per["count"].tolist() == [3, 2]
        assert log.per_iteration("a").iteration.tolist() == [0, sent[0].envelope.iteration]


def test_query_filters(messages):
    with MessageLog() as log:
        log.append(messages, "a")
        log.append(_schedules(2, "f2"), "b")
        assert log.frame(kind="offer").kind.tolist() == ["offer"]
        assert log.frame(kind=Offer).id.tolist() == log.frame(kind="offer").id.tolist()
        assert set(log.frame(sender="dso:f2").kind) == {"interface_schedule"}
        assert len(log.frame(sender=Party.dso("f2"))) == 2
        assert len(log.frame(recipient="tso", scheme="b")) == 2
        assert len(log.frame(recipient=Party.tso(), scheme="a")) == 7
        assert len(log.frame(scheme="nope")) == 0
        assert list(log.frame(scheme="nope").columns) == [c for c in COLUMNS if c != "payload"]
        got = log.messages(kind="interface_schedule", scheme="a")
        assert len(got) == 1 and got[0].p_mw.tolist() == messages[4].p_mw.tolist()
        with pytest.raises(TsodsoError, match="unknown message kind 'bid'; kinds: "):
            log.frame(kind="bid")
        with pytest.raises(TsodsoError, match="cannot read party"):
            log.frame(sender="nobody")


def test_refuses_files_that_are_not_tsodso_logs(tmp_path):
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER)")
    con.commit()
    con.close()
    before = other.read_bytes()
    with pytest.raises(TsodsoError, match="other.sqlite is not a tsodso message log: it has "
                                          "no table 'messages' .tables: customers."):
        MessageLog(other)
    assert other.read_bytes() == before  # not touched (not even switched to WAL)
    wrong = tmp_path / "wrong.sqlite"
    con = sqlite3.connect(wrong)
    con.execute("CREATE TABLE messages (a TEXT, b TEXT)")
    con.commit()
    con.close()
    with pytest.raises(TsodsoError, match="not a tsodso message log: its table 'messages' has "
                                          "columns a, b"):
        MessageLog(wrong)
    text = tmp_path / "notes.sqlite"
    text.write_text("hello, this is not a database\n" * 10)
    with pytest.raises(TsodsoError, match="notes.sqlite is not a tsodso message log: file is "
                                          "not a database"):
        MessageLog(text)
    with pytest.raises(TsodsoError, match="no message log at"):
        MessageLog(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()
    with pytest.raises(TsodsoError, match="no folder"):
        MessageLog(tmp_path / "nowhere" / "log.sqlite")


def test_file_log_settings_and_url(tmp_path):
    path = tmp_path / "log.sqlite"
    with MessageLog(str(path)) as log:
        log.append(_schedules(1), "s")
        with log._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    with MessageLog(f"sqlite:///{path}", run_id="u") as log:  # a URL to the same file
        assert log.path == path and log.count() == 1
        assert log.append(_schedules(1), "s")[0].envelope.id == "u-0000002"
    log.close()  # twice is fine
    with pytest.raises(TsodsoError, match="closed"):
        log.frame()


def test_append_throughput(tmp_path):
    batch = _schedules(200)
    with MessageLog(tmp_path / "log.sqlite") as log:
        start = time.perf_counter()
        for _ in range(300):
            log.append(batch, "s")
        elapsed = time.perf_counter() - start
        assert log.count() == 60_000
    print(f"appended 60000 messages in batches of 200: {elapsed:.2f} s")
    assert elapsed < 10.0


CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from tsodso.actors import InterfaceSchedule, MessageLog, new_envelope

    env = new_envelope("dso:f1", "tso", periods=24, period_hours=1.0)
    batch = [InterfaceSchedule(env, "f1", np.full(24, float(i))) for i in range(100)]
    log = MessageLog(sys.argv[1], run_id="kill")
    while True:
        log.append(batch, "kill")  # returns once the batch is committed
        print(log.last_seq, flush=True)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_committed_batches_survive_sigkill(tmp_path):
    path = tmp_path / "log.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    printed = []
    try:
        while len(printed) < 5:
            line = proc.stdout.readline()
            assert line, f"the writer ended early: {proc.stderr.read()}"
            printed.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)  # most likely in the middle of a transaction
        assert proc.wait(timeout=60) == -signal.SIGKILL
        printed += [int(line) for line in proc.stdout.read().splitlines() if line.strip()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    last = printed[-1]
    assert printed == [100 * i for i in range(1, len(printed) + 1)]
    with MessageLog(path, run_id="kill") as log:
        assert log.integrity_ok()
        seqs = log.frame().seq.tolist()
        assert seqs == list(range(1, len(seqs) + 1))  # nothing lost inside the log
        assert len(seqs) >= last and len(seqs) % 100 == 0  # whole batches only
        kept = log.messages()
        assert [m.envelope.id for m in kept[:last]] == [f"kill-{i:07d}" for i in
                                                        range(1, last + 1)]
        assert kept[last - 1].p_mw[0] == 99.0
        assert log.append(_schedules(1), "after")[0].envelope.id == f"kill-{len(seqs) + 1:07d}"

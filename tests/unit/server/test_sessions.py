"""The stateful-session table (pure): create, look up, expire, lose, bound."""

from __future__ import annotations

import re

from sagemaker_inference.server.sessions import SessionTable

ID = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")  # botocore's pattern for a session id


def test_create_and_get_until_expiry():
    table = SessionTable(expiration=10.0, limit=5)
    session = table.create("w1", now=100.0, wall=0.0)
    assert ID.match(session.session_id) and len(session.session_id) <= 256
    assert session.expires_header == "1970-01-01T00:00:10Z"
    assert table.get(session.session_id, 109.9) is session
    assert table.get(session.session_id, 110.0) is None  # expired: treated as unknown at once
    assert table.get("nope", 100.0) is None


def test_expire_removes_and_returns_only_expired_sessions():
    table = SessionTable(expiration=10.0, limit=5)
    old = table.create("w1", now=0.0, wall=0.0)
    new = table.create("w2", now=5.0, wall=5.0)
    assert table.expire(9.0) == []
    assert table.expire(10.0) == [old]
    assert len(table) == 1 and table.get(new.session_id, 10.0) is new


def test_a_lost_worker_marks_its_sessions_lost_and_only_those():
    table = SessionTable(expiration=10.0, limit=5)
    a, b = table.create("w1", 0.0, 0.0), table.create("w2", 0.0, 0.0)
    table.worker_lost("w1")
    assert a.lost and not b.lost
    assert table.get(a.session_id, 1.0) is a  # kept, so the client hears "session lost", not "unknown"
    assert table.count("w1") == 0 and table.count("w2") == 1


def test_limit_and_remove():
    table = SessionTable(expiration=10.0, limit=2)
    first = table.create("w", 0.0, 0.0)
    table.create("w", 0.0, 0.0)
    assert table.full
    assert table.remove(first.session_id) is first and not table.full
    assert table.remove(first.session_id) is None
    assert table.create("w", 0.0, 0.0).session_id != first.session_id

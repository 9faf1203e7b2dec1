"""Stateful (sticky) sessions: which worker holds a session's state, and until when. Pure.

Theory. SageMaker routes every request of a session to the same instance; inside it, the state
a handler keeps in memory lives in one worker process, so every request of the session must run
on that worker. The frontend owns the table (id -> worker, expiry); nothing is kept in workers
but the user's own state. The rules:

* a new session goes to the ready worker with the fewest sessions (the caller picks it);
* a request of a session runs on its worker only (``WorkerGroup.submit_pinned``);
* the worker dies: its sessions are *lost*, kept as such until they would have expired, so a
  client gets 400 "session lost" rather than "unknown session", and never a silent move to a
  worker without the state;
* expiry (``expiration`` seconds after creation): the entry goes, and the model's close hook runs
  on the worker (``WorkerGroup``); later requests with that id get 400 "unknown or expired".

Ids are UUID4 text: letters, digits and hyphens, as botocore's pattern for a session id allows.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

SESSION_HEADER = b"x-amzn-sagemaker-session-id"
NEW_SESSION_HEADER = b"X-Amzn-SageMaker-New-Session-Id"
CLOSED_SESSION_HEADER = b"X-Amzn-SageMaker-Closed-Session-Id"


class StickySession:
    __slots__ = ("session_id", "worker", "expires", "expires_at", "lost")

    def __init__(self, session_id: str, worker: Any, expires: float, expires_at: float):
        self.session_id, self.worker = session_id, worker
        self.expires = expires  # monotonic
        self.expires_at = expires_at  # wall clock, for the header
        self.lost = False

    @property
    def expires_header(self) -> str:
        """``Expires=`` value: UTC, ISO 8601 with a Z."""
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires_at))


class SessionTable:
    """Open sessions of one model by id (bounded by ``limit``)."""

    def __init__(self, expiration: float, limit: int):
        self.expiration, self.limit = expiration, limit
        self._sessions: dict[str, StickySession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def full(self) -> bool:
        return len(self._sessions) >= self.limit

    def create(self, worker: Any, now: float, wall: float) -> StickySession:
        session = StickySession(str(uuid.uuid4()), worker, now + self.expiration, wall + self.expiration)
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str, now: float) -> StickySession | None:
        """The session, if it exists and has not expired (a lost one is returned: check ``lost``)."""
        session = self._sessions.get(session_id)
        return session if session is not None and now < session.expires else None

    def remove(self, session_id: str) -> StickySession | None:
        return self._sessions.pop(session_id, None)

    def expire(self, now: float) -> list[StickySession]:
        """Remove and return the sessions past their expiry."""
        if not self._sessions:
            return []
        gone = [s for s in self._sessions.values() if now >= s.expires]
        for session in gone:
            del self._sessions[session.session_id]
        return gone

    def worker_lost(self, worker: Any) -> None:
        for session in self._sessions.values():
            if session.worker is worker:
                session.lost = True

    def count(self, worker: Any) -> int:
        return sum(1 for s in self._sessions.values() if s.worker is worker and not s.lost)

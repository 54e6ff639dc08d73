"""Endpoints, deliveries and attempts in one SQLite file beside the keys file (`CRISIS_WEBHOOKS_FILE`).

A registry file, not the log: the deliverer must sign with each endpoint's secret, so the secret is kept as
it is, and the log is the wrong home for a secret (replicated, retained, read by every process, never
erased). The file is created 0600. SQLite lets the API of any process on the machine register endpoints,
list deliveries and ask for a redelivery while one deliverer works through them. Methods block: async
callers run them in a thread.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from crisis.domain.envelope import Envelope, envelope_json, utcnow
from crisis.domain.webhooks import DeliveryState, Endpoint
from crisis.store.transactions import immediate

SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoints (
    id TEXT PRIMARY KEY, org TEXT NOT NULL, record TEXT NOT NULL, secret TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    crisis_id TEXT NOT NULL,
    handling TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,
    round_attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries(state, created_at);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(endpoint_id, state, created_at);
CREATE TABLE IF NOT EXISTS attempts (
    endpoint_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    at TEXT NOT NULL,
    status INTEGER,
    error TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    FOREIGN KEY (endpoint_id, event_id) REFERENCES deliveries(endpoint_id, event_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts(endpoint_id, event_id);
"""


@dataclass(frozen=True)
class Attempt:
    at: datetime
    status: int | None
    error: str
    duration_ms: float


@dataclass(frozen=True)
class Delivery:
    endpoint_id: str
    event_id: str
    event_type: str
    crisis_id: str
    handling: Envelope  # the event's handling attributes (data left out), for the audience rule
    state: DeliveryState
    round_attempts: int
    created_at: datetime
    updated_at: datetime
    attempts: tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class Job:
    """What the deliverer needs to send one delivery."""

    endpoint: Endpoint
    secret: str
    event_id: str
    body: bytes
    round_attempts: int


class WebhookStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # A commit lost to a power cut is re-made: the log is folded again at start (enqueue) and a delivery
        # whose "delivered" mark is lost is sent again with the same webhook-id (at least once).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, immediate(self._db) as db:
            yield db

    # Endpoints

    def add_endpoint(self, endpoint: Endpoint, secret: str) -> Endpoint:
        """Store an endpoint, stamped with its registration time while the write lock is held: an event
        written after the stamp is folded after the commit, so the deliverer, reading endpoints after
        folding it, always sees the endpoint the event is for."""
        with self._tx() as db:
            endpoint = endpoint.model_copy(update={"created_at": utcnow()})
            db.execute(
                "INSERT INTO endpoints VALUES (?, ?, ?, ?)",
                (endpoint.id, endpoint.org, endpoint.model_dump_json(), secret),
            )
        return endpoint

    def endpoints(self, org: str | None = None) -> list[Endpoint]:
        with self._lock:
            rows = self._db.execute(
                "SELECT record FROM endpoints WHERE ?1 IS NULL OR org = ?1 ORDER BY id", (org,)
            ).fetchall()
        return [Endpoint.model_validate_json(r[0]) for r in rows]

    def remove_endpoint(self, endpoint_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM endpoints WHERE id = ?", (endpoint_id,))

    # Deliveries

    def enqueue(self, items: list[tuple[Endpoint, Envelope]]) -> int:
        """Record a pending delivery per (endpoint, event); one already recorded is left as it is (the log
        is folded again at every start). Returns how many are new."""
        now = utcnow().isoformat()
        with self._tx() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO deliveries SELECT ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM endpoints WHERE id = ?)",
                [
                    (
                        ep.id,
                        env.id,
                        env.type.value,
                        env.subject,
                        env.model_copy(update={"data": {}}).model_dump_json(),
                        envelope_json(env),
                        now,
                        now,
                        ep.id,
                    )
                    for ep, env in items
                ],
            )
            return db.total_changes - before

    def secrets(self) -> dict[str, str]:
        """Each endpoint's signing secret, by endpoint id."""
        with self._lock:
            return dict(self._db.execute("SELECT id, secret FROM endpoints").fetchall())

    def pending(self, endpoint: Endpoint, secret: str, limit: int, skip: set[str]) -> list[Job]:
        """An endpoint's pending deliveries, oldest first, leaving out the event ids in flight."""
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, body, round_attempts FROM deliveries "
                "WHERE endpoint_id = ? AND state = 'pending' ORDER BY created_at LIMIT ?",
                (endpoint.id, limit + len(skip)),
            ).fetchall()
        return [Job(endpoint, secret, r[0], r[1], r[2]) for r in rows if r[0] not in skip][:limit]

    def record_attempt(self, job: Job, attempt: Attempt, state: DeliveryState) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO attempts SELECT ?, ?, ?, ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM deliveries WHERE endpoint_id = ? AND event_id = ?)",
                (
                    job.endpoint.id,
                    job.event_id,
                    attempt.at.isoformat(),
                    attempt.status,
                    attempt.error,
                    attempt.duration_ms,
                    job.endpoint.id,
                    job.event_id,
                ),
            )
            db.execute(
                "UPDATE deliveries SET state = ?, round_attempts = round_attempts + 1, updated_at = ? "
                "WHERE endpoint_id = ? AND event_id = ?",
                (state.value, attempt.at.isoformat(), job.endpoint.id, job.event_id),
            )

    def deliveries(
        self, *, org: str | None, state: DeliveryState | None, endpoint_id: str | None, limit: int
    ) -> list[Delivery]:
        """Newest first; `org` None means every organisation's."""
        with self._lock:
            rows = self._db.execute(
                "SELECT d.endpoint_id, d.event_id, d.event_type, d.crisis_id, d.handling, d.state, "
                "d.round_attempts, d.created_at, d.updated_at FROM deliveries d "
                "JOIN endpoints e ON e.id = d.endpoint_id "
                "WHERE (?1 IS NULL OR e.org = ?1) AND (?2 IS NULL OR d.state = ?2) "
                "AND (?3 IS NULL OR d.endpoint_id = ?3) ORDER BY d.created_at DESC LIMIT ?4",
                (org, state.value if state else None, endpoint_id, limit),
            ).fetchall()
        return [_delivery(r) for r in rows]

    def delivery(self, endpoint_id: str, event_id: str) -> Delivery | None:
        with self._lock:
            row = self._db.execute(
                "SELECT endpoint_id, event_id, event_type, crisis_id, handling, state, round_attempts, "
                "created_at, updated_at FROM deliveries WHERE endpoint_id = ? AND event_id = ?",
                (endpoint_id, event_id),
            ).fetchone()
            if row is None:
                return None
            attempts = self._db.execute(
                "SELECT at, status, error, duration_ms FROM attempts WHERE endpoint_id = ? AND event_id = ? "
                "ORDER BY rowid",
                (endpoint_id, event_id),
            ).fetchall()
        found = _delivery(row)
        return Delivery(
            **{**found.__dict__, "attempts": tuple(_attempt(a) for a in attempts)},
        )

    def redeliver(self, endpoint_id: str, event_id: str) -> bool:
        """Send a delivery again with a fresh round of attempts; its earlier attempts stay recorded."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE deliveries SET state = 'pending', round_attempts = 0, updated_at = ? "
                "WHERE endpoint_id = ? AND event_id = ?",
                (utcnow().isoformat(), endpoint_id, event_id),
            )
            return cursor.rowcount > 0


def _delivery(row: tuple[object, ...]) -> Delivery:
    ep, ev, typ, crisis, handling, state, attempts, created, updated = row
    return Delivery(
        endpoint_id=str(ep),
        event_id=str(ev),
        event_type=str(typ),
        crisis_id=str(crisis),
        handling=Envelope.model_validate_json(str(handling)),
        state=DeliveryState(str(state)),
        round_attempts=int(str(attempts)),
        created_at=datetime.fromisoformat(str(created)),
        updated_at=datetime.fromisoformat(str(updated)),
    )


def _attempt(row: tuple[object, ...]) -> Attempt:
    at, status, error, duration = row
    return Attempt(
        at=datetime.fromisoformat(str(at)),
        status=None if status is None else int(str(status)),
        error=str(error),
        duration_ms=float(str(duration)),
    )

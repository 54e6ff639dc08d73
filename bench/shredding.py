"""What crypto-shredding costs: sealing and opening one event, and an erasure over a large crisis.

    python bench/shredding.py [--indicators 10000]

Prints per-event times for seal and unseal of `indicator.shared` events (AES-256-GCM, one key per
indicator), what the embedded mode's key directory takes to make and destroy keys, and the time the fold
takes to drop the values of one indicator and of a whole crisis (retention) from a crisis of N indicators
with one action each, in memory and in the SQLite store.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crisis.crypto.keyring import FileKeyring
from crisis.crypto.seal import new_key, seal, unseal
from crisis.domain import commands, retention
from crisis.domain.book import Book
from crisis.domain.commands import Write
from crisis.domain.crisis import CrisisCreate, TransitionRequest
from crisis.domain.enums import EventType, Mode, Role, Status, Tlp
from crisis.domain.envelope import Envelope, source_for
from crisis.domain.principal import Principal
from crisis.store.sqlite import SqliteStorage

HUB = Principal(org="hub", role=Role.COORDINATOR, key_id="k1")
T0 = datetime(2026, 3, 1, tzinfo=UTC)


_COUNTER = iter(range(10**9))


def ids() -> Callable[..., str]:
    return lambda *parts: f"e{next(_COUNTER)}"


def shares(cid: str, n: int) -> list[Envelope]:
    out = []
    for i in range(n):
        value = f"https://video.example/watch?v={i:08d}"
        data = {
            "kind": "url",
            "value": value,
            "canonical": value,
            "indicator_id": f"i{i}",
            "shared_by": "hub",
        }
        out.append(
            Envelope(
                id=f"s{i}",
                source=source_for("hub", "k1"),
                type=EventType.INDICATOR_SHARED,
                time=T0,
                subject=cid,
                tlp=Tlp.AMBER,
                mode=Mode.LIVE,
                role=Role.COORDINATOR,
                data=data,
            )
        )
    return out


def actions(cid: str, n: int) -> list[Envelope]:
    return [
        Envelope(
            id=f"a{i}",
            source=source_for("vidshare", "k3"),
            type=EventType.ACTION_REPORTED,
            time=T0,
            subject=cid,
            tlp=Tlp.AMBER,
            mode=Mode.LIVE,
            role=Role.PROVIDER,
            data={
                "indicator_id": f"i{i}",
                "outcome": "removed",
                "provider_org": "vidshare",
                "at": T0.isoformat(),
                "note": "taken down",
            },
        )
        for i in range(n)
    ]


def crisis_of(book: Book, n: int) -> str:
    w = Write(actor=HUB, at=T0, ids=ids())
    req = CrisisCreate(title="Attack", status=Status.MONITORING)
    opened = commands.open_crisis(book, w, req)
    book.apply(opened)
    cid = opened.subject
    for env in [*shares(cid, n), *actions(cid, n)]:
        book.apply(env)
    return cid


def seal_figures(n: int) -> None:
    events = shares("c1", n)
    keys = [new_key() for _ in events]
    start = time.perf_counter()
    sealed = [seal(env, key) for env, key in zip(events, keys, strict=True)]
    sealing = time.perf_counter() - start
    start = time.perf_counter()
    for env, key in zip(sealed, keys, strict=True):
        unseal(env, key)
    opening = time.perf_counter() - start
    start = time.perf_counter()
    for env in sealed:
        unseal(env, None)
    erased = time.perf_counter() - start
    print(f"seal:             {sealing / n * 1e6:7.1f} µs per indicator.shared ({n} events)")
    print(f"unseal:           {opening / n * 1e6:7.1f} µs per indicator.shared")
    print(f"unseal, key gone: {erased / n * 1e6:7.1f} µs per indicator.shared")


def erase_figures(label: str, make: Callable[[], Book], n: int) -> None:
    book = make()
    cid = crisis_of(book, n)
    w = Write(actor=HUB, at=T0, ids=ids())
    start = time.perf_counter()
    book.apply(commands.erase(book, w, cid, "i0", "personal data"))
    one = time.perf_counter() - start
    state = book.crises[cid].state
    closing = commands.transition(
        book, w, cid, TransitionRequest(to=Status.CLOSED, expected_version=state.version)
    )
    assert book.apply(closing).accepted
    state = book.crises[cid].state
    due = retention.expires_at(state)
    assert due is not None
    start = time.perf_counter()
    outcome = book.apply(retention.expiry_event(state, due + timedelta(seconds=1)))
    whole = time.perf_counter() - start
    assert outcome.accepted
    print(
        f"{label}: erase one indicator {one * 1000:8.1f} ms; retention of the crisis {whole * 1000:8.1f} ms"
    )


async def keyring_figures() -> None:
    """The embedded mode's key directory: making a batch's keys, however many are kept already."""
    with tempfile.TemporaryDirectory() as tmp:
        ring = FileKeyring(Path(tmp))
        for total in (1_000, 10_000, 100_000):
            while len(ring.keys) < total:
                await ring.create([f"c/{len(ring.keys) + i}" for i in range(1000)])
            start = time.perf_counter()
            await ring.create([f"c/x{total}-{i}" for i in range(1000)])
            made = time.perf_counter() - start
            start = time.perf_counter()
            await ring.destroy(lambda kid, total=total: kid == f"c/x{total}-0")
            gone = time.perf_counter() - start
            print(
                f"key directory, {total:>7} keys kept: 1000 new keys {made * 1000:6.1f} ms, "
                f"destroy one {gone * 1000:6.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indicators", type=int, default=10_000)
    n = parser.parse_args().indicators
    seal_figures(n)
    asyncio.run(keyring_figures())
    erase_figures(f"memory, {n} indicators + {n} actions", Book, n)
    with tempfile.TemporaryDirectory() as tmp:
        erase_figures(f"sqlite, {n} indicators + {n} actions", lambda: Book(SqliteStorage(Path(tmp))), n)


if __name__ == "__main__":
    main()

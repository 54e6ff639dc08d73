"""Where an indicator's CPU goes on its way through an API process: each stage of the write path, in-process.

    python bench/write_path.py [--batches 30] [--batch 1000] [--memory]

Runs the stages of `POST /v1/crises/{id}/indicators` one after the other on batches of fresh sha256
indicators, without HTTP or Kafka, and prints the CPU per indicator of each: checking the items, the domain
command that builds the events, sealing (a data key per indicator, AES-GCM), linking into the crisis's hash
chain, encoding for Kafka, opening the process's own events again as its reader does, the fold, and the
local store (its rows made on the event loop, then written by SQLite on the writer thread). Decoding is
printed apart: a process decodes the events other processes wrote, not its own. The event loop's share of
`bench/ingest.py`'s figure is these stages plus HTTP, aiokafka's produce and fetch, and the loop itself.
The garbage collector runs with the thresholds every serving process sets (crisis.heap).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import itertools
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crisis.bus.codec import decode, encode
from crisis.bus.memory import MemoryBus
from crisis.crypto.keyring import MemoryKeyring
from crisis.crypto.sealed import SealedBus
from crisis.domain import chain, commands
from crisis.domain.book import Book
from crisis.domain.commands import Write
from crisis.domain.crisis import CrisisCreate
from crisis.domain.enums import ActivationCriterion, Role, Status
from crisis.domain.indicators import check_items
from crisis.domain.principal import Principal
from crisis.heap import GC_THRESHOLDS
from crisis.store import writer
from crisis.store.sqlite import SqliteStorage

HUB = Principal(org="hub", role=Role.COORDINATOR, key_id="k1")
_ids = itertools.count()
_values = itertools.count()


def write(at: datetime) -> Write:
    return Write(actor=HUB, at=at, ids=lambda *parts: f"e{next(_ids)}")


class Stages:
    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}

    def timed(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.thread_time()
        out = fn()
        self.cpu[name] = self.cpu.get(name, 0.0) + time.thread_time() - start
        return out

    async def timed_async(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.thread_time()
        out = await fn()
        self.cpu[name] = self.cpu.get(name, 0.0) + time.thread_time() - start
        return out


async def run(args: argparse.Namespace) -> None:
    gc.set_threshold(*GC_THRESHOLDS)  # as every serving process sets them
    store = None if args.memory else SqliteStorage(Path(tempfile.mkdtemp(prefix="crisis-bench-")))
    book = Book(store)
    req = CrisisCreate(
        title="bench", status=Status.ACTIVATED, level=1, criteria=[ActivationCriterion.VIRAL_SPREAD]
    )
    opened = commands.open_crisis(book, write(datetime.now(UTC)), req)
    assert book.apply(opened).accepted
    cid = opened.subject
    bus = SealedBus(MemoryBus(), MemoryKeyring())
    on_disk = [0.0]
    write_rows = writer._write

    def counted(db: Any, prepared: Any, wipe: bool = False) -> None:
        start = time.thread_time()
        write_rows(db, prepared, wipe)
        on_disk[0] += time.thread_time() - start

    writer._write = counted
    s = Stages()
    gc.collect()
    gc.freeze()
    for n in range(args.batches):
        items = [
            {"kind": "sha256", "value": hashlib.sha256(str(next(_values)).encode()).hexdigest()}
            for _ in range(args.batch)
        ]
        valid, _ = s.timed("check items", lambda items=items: check_items(items))
        w = write(datetime.now(UTC))
        envelopes = s.timed(
            "command (events)", lambda w=w, valid=valid: commands.share(book, w, cid, valid, None, None)
        )
        if store is not None:
            # A write without an Idempotency-Key: its ids are new, the store is not asked (Ledger.write).
            s.timed("store lookups", lambda e=envelopes: store.fresh(e))
        sealed = await s.timed_async("seal", lambda e=envelopes: bus.seal(e))

        def link(sealed: list[Any] = sealed) -> list[Any]:
            head, out = book.chain_head(cid), []
            for env in sealed:
                out.append(linked := chain.stamp(env, head))
                head = linked.chainhash
            return out

        linked = s.timed("chain link", link)
        records = s.timed("encode", lambda linked=linked: [encode(env) for env in linked])
        s.timed("(decode, others' events)", lambda r=records: [decode(x.value, x.headers) for x in r])

        def reopen(linked: list[Any] = linked) -> list[Any]:
            return [bus.open_known(env) for env in linked]  # as the reader opens events whose key it holds

        plain = s.timed("open own events", reopen)

        def fold(plain: list[Any] = plain, n: int = n) -> None:
            if store is not None:
                store.prefetch(plain)
            for env in plain:
                assert book.apply(env).accepted
            if store is not None:
                store.checkpoint("bench", {0: n}, set())

        s.timed("fold", fold)
        if store is not None:
            s.timed("store rows (event loop)", lambda: [writer.statements(b) for b in store.batches()])
            store.commit()
    total = args.batches * args.batch
    loop = 0.0
    for name, cpu in s.cpu.items():
        per = cpu / total * 1e6
        if not name.startswith("("):
            loop += per
        print(f"  {name:28s} {per:6.1f} µs")
    print(f"  {'sum on the event loop':28s} {loop:6.1f} µs per indicator")
    if store is not None:
        # statements() ran twice per batch above (once timed, once by commit): its rows are written once.
        print(f"  {'SQLite (writer thread)':28s} {on_disk[0] / total * 1e6:6.1f} µs per indicator")
        store.close()
    print(
        f"{total:,} indicators in batches of {args.batch}, "
        + ("state in memory" if store is None else "local store")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--memory", action="store_true", help="the fold's state in memory, no local store")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

"""Where the data keys live: a store every process reads, from which a destroyed key is really gone.

Key ids (crisis.domain.sensitive): `<crisis id>` for a crisis's free text, `<crisis id>/<indicator id>` for
one indicator. Adapters: memory (one process, `memory://`), a directory of small files (the embedded mode:
each file written whole and never appended to, so a destroyed key leaves no copy behind) and a compacted
Kafka topic (crisis.bus.kafka_keys).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import itertools
import json
import os
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Final, Protocol

import structlog

from crisis.bus.base import PublishError
from crisis.crypto.keycache import KeyFile
from crisis.crypto.seal import new_key
from crisis.domain import sensitive

log = structlog.get_logger(__name__)

Covers = Callable[[str], bool]


class Keyring(Protocol):
    def get(self, kid: str) -> bytes | None:
        """The key as this process knows it now (no I/O)."""
        ...

    async def refresh(self) -> None:
        """Learn the keys other processes made since the last look (called when a key is missing)."""
        ...

    async def create(self, kids: Collection[str]) -> None:
        """Make a key for each id that has none, durably, before returning (a key kept is kept)."""
        ...

    def forget(self, covers: Covers) -> list[str]:
        """Drop the matching keys from this process's memory now; returns their ids."""
        ...

    async def destroy(self, covers: Covers, known: Collection[str] = ()) -> None:
        """Destroy the matching keys in the store every process reads (idempotent); `known` names the
        ones this process held before it forgot them."""
        ...


# Keys held in memory beside a key file: a few batches of shares (each key about 200 bytes in memory).
CACHE_KEYS: Final = 50_000
# Key files taken into the key file in one transaction.
TAKE_FILES: Final = 50


class MemoryKeyring:
    """Keys in this process's memory only: for `memory://` and unit tests. With a key file
    (crisis.crypto.keycache), the base of the other keyrings: the file holds every key learned, memory only
    the most recent ones (`cache` of them: those just made, read or looked up)."""

    def __init__(self, local: KeyFile | None = None, *, cache: int = CACHE_KEYS) -> None:
        self.keys: dict[str, bytes] = {}
        self.local = local
        self.cache = max(cache, 1)

    def get(self, kid: str) -> bytes | None:
        key = self.keys.get(kid)
        if key is None and self.local is not None:
            key = self.local.get(kid)
            if key is not None:
                self._hold({kid: key})
        return key

    def _hold(self, keys: Mapping[str, bytes]) -> None:
        """Keep keys in memory; beside a key file, the oldest quarter goes when the cache is full (a new
        dict: deleting from the front of one leaves its slots to be skipped by every later look)."""
        self.keys.update(keys)
        if self.local is not None and len(self.keys) > self.cache:
            self.keys = dict(itertools.islice(self.keys.items(), len(self.keys) - self.cache * 3 // 4, None))

    def _missing(self, kids: Collection[str]) -> list[str]:
        """Those of `kids` (once each, in order) with no live key here: memory first, then the key file
        in one query (a batch of shares asks about a thousand new ids at once)."""
        fresh = [kid for kid in dict.fromkeys(kids) if kid not in self.keys]
        if fresh and self.local is not None:
            live = self.local.live(fresh)
            fresh = [kid for kid in fresh if kid not in live]
        return fresh

    async def refresh(self) -> None:
        return None

    async def create(self, kids: Collection[str]) -> None:
        self._hold({kid: new_key() for kid in self._missing(kids)})

    def forget(self, covers: Covers) -> list[str]:
        # An erasure of named keys looks up those; one of a whole crisis looks at every key held here.
        named = covers.kids if isinstance(covers, sensitive.Covers) else None
        gone = [kid for kid in (self.keys if named is None else named) if kid in self.keys and covers(kid)]
        for kid in gone:
            del self.keys[kid]
        if self.local is not None:
            gone = list(dict.fromkeys([*gone, *self.local.forget(covers)]))
        return gone

    async def destroy(self, covers: Covers, known: Collection[str] = ()) -> None:
        self.forget(covers)


class FileKeyring(MemoryKeyring):
    """Keys in a directory beside the embedded log, shared by the processes of one machine.

    Each batch of keys made together (a batch of shares) is one small file, so making keys costs the same
    however many exist. A file is never appended to: destroying a key writes the file's other keys to a
    new file (written whole, fsynced, renamed into place), then overwrites the old file with zeros, fsyncs
    and removes it, and fsyncs the directory. An exclusive lock serialises changes between processes.

    With a key file (`local`), what was taken in is kept there: a start reads only the files made since,
    and lets go of the keys of files removed since (their keys that live were written to a new file).
    """

    SUFFIX = ".keys"

    def __init__(self, directory: Path, local: KeyFile | None = None, *, cache: int = CACHE_KEYS) -> None:
        super().__init__(local, cache=cache)
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._where: dict[str, str] = {}  # key id -> the file that holds it (without a key file)
        self._loaded: set[str] = set() if local is None else set(local.sources())
        # What this process forgot or destroyed: never taken in again from a file made meanwhile.
        self._erased: list[Covers] = []
        self._loading = threading.Lock()  # one look at a time: a look that found nothing new was complete
        known = len(self._loaded)
        log.info("keys_restored", files_known=known, files_read=self._load_new())

    def _read(self, name: str) -> dict[str, bytes]:
        raw = json.loads((self.directory / name).read_text())
        return {kid: base64.b64decode(value) for kid, value in raw.items()}

    def _load_new(self) -> int:
        """Take in the files made since the last look (by this process or another); returns how many."""
        with self._loading:
            listing = {path.name for path in self.directory.glob(f"*{self.SUFFIX}")}
            new = sorted(listing - self._loaded)
            for at in range(0, len(new), TAKE_FILES):
                with self.local.batch() if self.local is not None else contextlib.nullcontext():
                    for name in new[at : at + TAKE_FILES]:
                        try:
                            keys = self._read(name)
                        except FileNotFoundError:
                            continue  # replaced by another process meanwhile: its successor is listed
                        self._take(name, keys)
            if self.local is not None:
                # Replaced by another process (its successor, taken in above, holds the keys that live) or
                # removed with the log.
                for name in sorted(self._loaded - listing):
                    self.local.drop_source(name)
                    self._loaded.discard(name)
            return len(new)

    def _take(self, name: str, keys: dict[str, bytes]) -> None:
        erased = {kid for kid in keys if any(covers(kid) for covers in self._erased)}
        if self.local is None:
            self.keys.update({kid: key for kid, key in keys.items() if kid not in erased})
            self._where.update(dict.fromkeys(keys, name))
        else:
            self.local.take(name, {kid: None if kid in erased else key for kid, key in keys.items()})
        self._loaded.add(name)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.directory / "lock").open("wb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, keys: dict[str, bytes]) -> str:
        name = f"{uuid.uuid4().hex}{self.SUFFIX}"
        tmp = self.directory / f"{name}.tmp"
        text = json.dumps({kid: base64.b64encode(key).decode() for kid, key in keys.items()})
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.directory / name)
        self._take(name, keys)
        return name

    def _wipe(self, name: str) -> None:
        """Overwrite a file with zeros before removing it: its blocks are not released holding keys."""
        path = self.directory / name
        with contextlib.suppress(FileNotFoundError):
            size = path.stat().st_size
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, bytes(size))
                os.fsync(fd)
            finally:
                os.close(fd)
            path.unlink()

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    async def refresh(self) -> None:
        await asyncio.to_thread(self._load_new)

    def _create(self, kids: Collection[str]) -> dict[str, bytes]:
        with self._locked():
            self._load_new()
            made = {kid: new_key() for kid in self._missing(kids)}
            if made:
                self._write(made)
                self._sync_directory()
            return made

    async def create(self, kids: Collection[str]) -> None:
        if not self._missing(kids):
            return
        try:
            made = await asyncio.to_thread(self._create, kids)
        except OSError as exc:
            raise PublishError(f"the data keys could not be written: {exc}") from exc
        self._hold(made)  # sealed right after: a dict lookup each

    def forget(self, covers: Covers) -> list[str]:
        self._erased.append(covers)
        return super().forget(covers)

    def _holding(self, covers: Covers) -> set[str]:
        """The files that hold a key `covers` matches."""
        if self.local is None:
            return {name for kid, name in self._where.items() if covers(kid)}
        return {name for name in self.local.covered(covers).values() if name is not None}

    def _destroy(self, covers: Covers) -> None:
        with self._locked():
            self._load_new()
            for name in sorted(self._holding(covers)):
                try:
                    held = self._read(name)
                except FileNotFoundError:
                    continue
                kept = {kid: key for kid, key in held.items() if not covers(kid)}
                if kept:
                    self._write(kept)
                self._wipe(name)
                self._loaded.discard(name)
                if self.local is not None:
                    self.local.drop_source(name)
            self._sync_directory()
            for kid in [kid for kid, name in self._where.items() if covers(kid)]:
                del self._where[kid]
                self.keys.pop(kid, None)

    async def destroy(self, covers: Covers, known: Collection[str] = ()) -> None:
        self.forget(covers)
        await asyncio.to_thread(self._destroy, covers)

"""Where the data keys live: a store every process reads, from which a destroyed key is really gone.

Key ids (crisis.domain.sensitive): `<crisis id>` for a crisis's free text, `<crisis id>/<indicator id>` for
one indicator. Adapters: memory (one process, `memory://`), a file (the embedded mode: rewritten in full,
fsynced and renamed on every change, never appended to, so a destroyed key leaves no copy behind) and a
compacted Kafka topic (crisis.bus.kafka_keys).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Protocol

from crisis.bus.base import PublishError
from crisis.crypto.seal import new_key

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


class MemoryKeyring:
    """Keys in this process's memory only: for `memory://` and unit tests."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}

    def get(self, kid: str) -> bytes | None:
        return self.keys.get(kid)

    async def refresh(self) -> None:
        return None

    async def create(self, kids: Collection[str]) -> None:
        for kid in kids:
            self.keys.setdefault(kid, new_key())

    def forget(self, covers: Covers) -> list[str]:
        gone = [kid for kid in self.keys if covers(kid)]
        for kid in gone:
            del self.keys[kid]
        return gone

    async def destroy(self, covers: Covers, known: Collection[str] = ()) -> None:
        self.forget(covers)


class FileKeyring(MemoryKeyring):
    """Keys in one JSON file beside the embedded log, shared by the processes of one machine.

    Every change takes an exclusive lock, reads the file, writes the whole new content to a temporary
    file, fsyncs it, renames it over the old one and fsyncs the directory: the old file's blocks hold the
    only other copy and are released to the file system (no journal of ours keeps them).
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.keys = self._read()

    def _read(self) -> dict[str, bytes]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {kid: base64.b64decode(value) for kid, value in raw.items()}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self.path.with_name(self.path.name + ".lock").open("wb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, keys: dict[str, bytes]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        text = json.dumps({kid: base64.b64encode(key).decode() for kid, key in keys.items()})
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def refresh(self) -> None:
        keys = await asyncio.to_thread(self._read)
        self.keys.update(keys)

    def _create(self, kids: Collection[str]) -> None:
        with self._locked():
            keys = self._read()
            missing = [kid for kid in kids if kid not in keys]
            for kid in missing:
                keys[kid] = self.keys.get(kid) or new_key()
            if missing:
                self._write(keys)
        self.keys.update({kid: keys[kid] for kid in kids})

    async def create(self, kids: Collection[str]) -> None:
        if all(kid in self.keys for kid in kids):
            return
        try:
            await asyncio.to_thread(self._create, kids)
        except OSError as exc:
            raise PublishError(f"the data keys could not be written: {exc}") from exc

    def _destroy(self, covers: Covers) -> None:
        with self._locked():
            keys = self._read()
            kept = {kid: key for kid, key in keys.items() if not covers(kid)}
            if len(kept) != len(keys):
                self._write(kept)

    async def destroy(self, covers: Covers, known: Collection[str] = ()) -> None:
        self.forget(covers)
        await asyncio.to_thread(self._destroy, covers)

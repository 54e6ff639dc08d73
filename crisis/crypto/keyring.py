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
import json
import os
import uuid
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
    """Keys in a directory beside the embedded log, shared by the processes of one machine.

    Each batch of keys made together (a batch of shares) is one small file, so making keys costs the same
    however many exist. A file is never appended to: destroying a key writes the file's other keys to a
    new file (written whole, fsynced, renamed into place), then overwrites the old file with zeros, fsyncs
    and removes it, and fsyncs the directory. An exclusive lock serialises changes between processes.
    """

    SUFFIX = ".keys"

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._where: dict[str, str] = {}  # key id -> the file that holds it
        self._loaded: set[str] = set()
        self._load_new()

    def _read(self, name: str) -> dict[str, bytes]:
        raw = json.loads((self.directory / name).read_text())
        return {kid: base64.b64decode(value) for kid, value in raw.items()}

    def _load_new(self) -> None:
        """Take in the files made since the last look (by this process or another)."""
        for path in sorted(self.directory.glob(f"*{self.SUFFIX}")):
            if path.name in self._loaded:
                continue
            try:
                keys = self._read(path.name)
            except FileNotFoundError:
                continue  # replaced by another process meanwhile: its successor is in the listing
            self._loaded.add(path.name)
            self.keys.update(keys)
            self._where.update(dict.fromkeys(keys, path.name))

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
        self._loaded.add(name)
        self._where.update(dict.fromkeys(keys, name))
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

    def _create(self, kids: Collection[str]) -> None:
        with self._locked():
            self._load_new()
            made = {kid: new_key() for kid in dict.fromkeys(kids) if kid not in self.keys}
            if made:
                self._write(made)
                self._sync_directory()
                self.keys.update(made)

    async def create(self, kids: Collection[str]) -> None:
        if all(kid in self.keys for kid in kids):
            return
        try:
            await asyncio.to_thread(self._create, kids)
        except OSError as exc:
            raise PublishError(f"the data keys could not be written: {exc}") from exc

    def _destroy(self, covers: Covers) -> None:
        with self._locked():
            self._load_new()
            for name in sorted({name for kid, name in self._where.items() if covers(kid)}):
                try:
                    held = self._read(name)
                except FileNotFoundError:
                    continue
                kept = {kid: key for kid, key in held.items() if not covers(kid)}
                if kept:
                    self._write(kept)
                self._wipe(name)
                self._loaded.discard(name)
            self._sync_directory()
            for kid in [kid for kid, name in self._where.items() if covers(kid)]:
                del self._where[kid]
                self.keys.pop(kid, None)

    async def destroy(self, covers: Covers, known: Collection[str] = ()) -> None:
        self.forget(covers)
        await asyncio.to_thread(self._destroy, covers)

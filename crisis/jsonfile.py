"""A small JSON file that several processes share (keys, organisations): re-read when another process
replaces it, written atomically and durably.

Writers replace the file (write a temporary file, fsync, rename), so readers never see half a file and a
`stat` tells them when to read again: the inode changes on every replace, which catches a same-size rewrite
within one mtime tick.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class SharedJsonFile(Generic[M]):
    def __init__(self, path: Path, model: type[M], mode: int = 0o600) -> None:
        self.path = path
        self._model = model
        self._mode = mode
        self._value: M | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0

    def load(self) -> M | None:
        """The file's content, parsed again only if it changed since the last call; None when absent."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._value, self._stamp = None, None
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._value = self._model.model_validate_json(self.path.read_bytes())
            self._stamp = stamp
        return self._value

    def fresh(self, every_s: float = 1.0) -> M | None:
        """`load`, but looking at the file at most once every `every_s` seconds (hot paths)."""
        now = time.monotonic()
        if now - self._checked > every_s:
            self._checked = now
            return self.load()
        return self._value

    def save(self, value: M) -> None:
        """Replace the file with `value`: readers see the old content or the new, never a mix."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self._mode)
        with os.fdopen(fd, "w") as fh:
            fh.write(value.model_dump_json(indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._stamp = None

"""The files a scenario names are input too: confined to its folder, bounded in size, regular files only.

A refusal says why in words of its own and never quotes the file: a path outside the folder, a device
or FIFO (`/dev/zero` never ends), a file over the limit, bytes that are not UTF-8.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

MAX_SCENARIO_BYTES: Final = 1024 * 1024
DEFAULT_MAX_FILE_BYTES: Final = 16 * 1024 * 1024
MAX_FILE_BYTES_ENV: Final = "CRISIS_EXERCISE_MAX_FILE_BYTES"


class Refused(Exception):
    """A file the scenario may not use; the message names the reason, never the content."""


@dataclass(frozen=True)
class FilePolicy:
    """Where a scenario's files may come from (besides its own folder) and how large they may be."""

    allowed: tuple[Path, ...] = ()
    max_bytes: int = field(default_factory=lambda: default_max_bytes())

    @classmethod
    def of(cls, allowed: Iterable[Path] = (), max_bytes: int | None = None) -> FilePolicy:
        return cls(tuple(Path(p).resolve() for p in allowed), max_bytes or default_max_bytes())

    def locate(self, base: Path, name: str, what: str = "file") -> Path:
        """`name` relative to the scenario's folder `base`, refused when it resolves outside every root."""
        # resolve() follows symlinks, so a link in the folder that points out is refused as well.
        target = (base / name).resolve()
        roots = (base.resolve(), *self.allowed)
        if not any(target.is_relative_to(root) for root in roots):
            raise Refused(
                f"the {what} is outside the scenario's folder (allow a folder with --allow-path DIR)"
            )
        return target

    def read(self, base: Path, name: str, what: str) -> str:
        return read_text(self.locate(base, name, what), self.max_bytes, what)


def default_max_bytes() -> int:
    value = os.environ.get(MAX_FILE_BYTES_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_FILE_BYTES


def read_text(path: Path, limit: int, what: str) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes, or Refused."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise Refused(f"cannot read the {what}: no such file") from None
    except OSError as exc:
        raise Refused(f"cannot read the {what}: {exc.strerror or type(exc).__name__}") from None
    if not stat.S_ISREG(info.st_mode):
        raise Refused(f"the {what} is not a regular file (devices, FIFOs and folders are never read)")
    if info.st_size > limit:
        raise Refused(f"the {what} has {info.st_size} bytes, over the limit of {limit}")
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)  # a file that grew since stat() is still cut at the limit
    except OSError as exc:
        raise Refused(f"cannot read the {what}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > limit:
        raise Refused(f"the {what} has more than {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(
            f"the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None

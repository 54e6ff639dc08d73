"""Files a user names on the command line, read with one clear refusal for each way they can be wrong."""

from __future__ import annotations

import stat
from pathlib import Path

from crisis.cli.errors import CliError


def read_text(path: Path, what: str = "file") -> str:
    """The UTF-8 text of a file or a pipe, or CliError saying what is wrong with it (never its content)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CliError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
        # A device (/dev/zero, a terminal) would be read for ever; a pipe (`--file /dev/stdin`) ends.
        raise CliError(f"{path}: not a regular file or a pipe")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None

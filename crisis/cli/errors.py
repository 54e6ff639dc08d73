"""What a user did wrong, or what is not there, as one line: the command never shows a traceback for it."""

from __future__ import annotations

import sys

# Exit codes scripts can rely on (docs/api.md, "The CLI"): 0 done, 1 failed, 2 a usage error (argparse),
# 3 a share answered with some items rejected (the others were shared and stand).
EXIT_FAILED = 1
EXIT_PARTLY_REJECTED = 3


class CliError(Exception):
    """A failure to report on stderr in one line; the command exits `exit_code` (1 unless told)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def user_message(exc: BaseException) -> str | None:
    """One line saying what went wrong and what to do, or None for a fault in crisis-bus itself."""
    if isinstance(exc, CliError):
        return str(exc)
    client_errors = _client_errors()
    if client_errors and isinstance(exc, client_errors):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"a file given is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    if isinstance(exc, IsADirectoryError | NotADirectoryError | FileNotFoundError | PermissionError):
        return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
    return None


def _client_errors() -> tuple[type[BaseException], ...]:
    # Only what is loaded already: a command that never touched the client raised none of these.
    found: list[type[BaseException]] = []
    http = sys.modules.get("crisis.client.http")
    if http is not None:
        found.append(http.ApiError)
    stream = sys.modules.get("crisis.client.stream")
    if stream is not None:
        found += [stream.StreamRefused, stream.StreamUnavailable]
    return tuple(found)

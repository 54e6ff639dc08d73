"""Where a server process keeps its local store when no CRISIS_STATE_DIR names one."""

from __future__ import annotations

import fcntl
import itertools
from pathlib import Path

from crisis.config import Settings


def free_directory(base: Path, name: str) -> Path:
    """`base/name`, or `name-2`, `name-3`, ... when another process holds it: each process on the same
    data directory (two `crisis serve api`, say) gets a store of its own."""
    for n in itertools.count(1):
        directory = base / (name if n == 1 else f"{name}-{n}")
        lock = directory / "state.lock"
        if not lock.exists():
            return directory
        with lock.open("wb") as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            fcntl.flock(held, fcntl.LOCK_UN)
            return directory
    raise AssertionError("unreachable")


def with_local_store(settings: Settings, name: str) -> Settings:
    """The settings of a server process named `name` (up, api, gateway), with its store's directory: the
    one CRISIS_STATE_DIR names, else one under the data directory; none with CRISIS_STATE_STORE=false or
    on memory:// (whose log is gone when the process stops)."""
    if settings.state_store is False or settings.bus_target.startswith("memory://"):
        return settings.model_copy(update={"state_dir": None})
    if settings.state_dir is not None:
        return settings
    base = settings.keys_file.parent / "state"
    return settings.model_copy(update={"state_dir": free_directory(base, name)})

"""What the benchmark scripts share: CPU time of a process, waiting for a server, the events they publish.

Imported as `support` (the scripts run as `python bench/NAME.py`, so bench/ is on the path). crisis is
imported inside the functions: some scripts serve another checkout's code (`--code DIR`) from a child process
while they themselves only build events.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux), to tell server cost from machine contention."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU time of a process's main thread (its event loop) and of all its other threads
    together (the store's writer, the executor's workers), from /proc (Linux)."""
    out = {"event loop": 0.0, "other threads": 0.0}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        out["event loop" if task.name == str(pid) else "other threads"] += cpu
    return out


def stop(proc: subprocess.Popen[bytes], grace: float = 15) -> None:
    """Terminate a server process, killed if it has not exited after `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until `GET /readyz` answers 200; exits the script if the server process dies or never gets ready."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the server process exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit("the server process did not become ready")


def crisis_activated(title: str) -> Any:
    """A `crisis.activated` envelope from a coordinator, ready to publish straight to the bus."""
    from crisis.domain.crisis import CrisisCreate, opened
    from crisis.domain.enums import ActivationCriterion, EventType, Role, Status
    from crisis.domain.envelope import Envelope, source_for, utcnow
    from crisis.domain.events import CrisisChanged
    from crisis.domain.principal import Principal

    hub = Principal(org="hub", role=Role.COORDINATOR, key_id="bench")
    req = CrisisCreate(
        title=title, status=Status.ACTIVATED, level=1, criteria=[ActivationCriterion.ONGOING_VIOLENT_EVENT]
    )
    state, transition = opened(str(uuid.uuid4()), req, hub, utcnow())
    return Envelope(
        source=source_for(hub.org, hub.key_id),
        type=EventType.CRISIS_ACTIVATED,
        subject=state.id,
        tlp=state.tlp,
        mode=state.mode,
        data=CrisisChanged(crisis=state, transition=transition, expected_version=0).model_dump(mode="json"),
    )


def indicator_shared(crisis_id: str, label: str) -> Any:
    """An `indicator.shared` envelope with a fresh sha256 and `label` in its context (a sequence number or
    a send timestamp the subscriber reads back)."""
    from crisis.domain.enums import EventType, Mode, Tlp
    from crisis.domain.envelope import Envelope, source_for

    value = hashlib.sha256(f"{uuid.uuid4()}{label}".encode()).hexdigest()
    event_id = str(uuid.uuid4())
    return Envelope(
        id=event_id,
        source=source_for("bka", "bench"),
        type=EventType.INDICATOR_SHARED,
        subject=crisis_id,
        tlp=Tlp.AMBER,
        mode=Mode.LIVE,
        data={
            "kind": "sha256",
            "value": value,
            "canonical": value,
            "context": {"labels": [label]},
            "indicator_id": event_id,
            "shared_by": "bka",
        },
    )

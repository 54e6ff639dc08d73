"""Helpers for tests that run `crisis` as a real process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path


def tansu_pids(port: int) -> list[int]:
    """Pids of embedded brokers listening on `port` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "tansu" in cmdline and f"127.0.0.1:{port}" in cmdline:
            found.append(int(entry.name))
    return found


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """The pids still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and not _zombie(p)]
        time.sleep(0.05)
    return alive


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True


class CrisisUp:
    """`crisis up` in a directory of its own; reads its banner."""

    def __init__(self, workdir: Path, api_port: int, gateway_port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crisis.cli",
                "up",
                "--api-port",
                str(api_port),
                "--gateway-port",
                str(gateway_port),
            ],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.banner: list[str] = []

    def read_banner(self, timeout: float = 30.0) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"crisis up exited with {self.proc.wait()}: {''.join(self.banner)}")
            self.banner.append(line)
            if line.startswith("Ctrl-C"):
                return "".join(self.banner)
        raise TimeoutError("crisis up printed no banner")

    @property
    def kafka_port(self) -> int:
        match = re.search(r"Kafka\s+127\.0\.0\.1:(\d+)", "".join(self.banner))
        assert match, self.banner
        return int(match.group(1))

    @property
    def key(self) -> str:
        match = re.search(r"^\s*(cb_\S+)\s*$", "".join(self.banner), re.MULTILINE)
        assert match, self.banner
        return match.group(1)

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

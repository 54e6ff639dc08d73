"""`crisis orgs`: the registry that TLP recipients and keys name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from crisis.orgs import OrgRegistry


def crisis(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crisis.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_add_and_list(tmp_path: Path) -> None:
    orgs = str(tmp_path / "orgs.json")
    assert "every organisation name is accepted" in crisis("orgs", "list", "--orgs-file", orgs).stderr
    done = crisis("orgs", "add", "vidshare", "bka", "--orgs-file", orgs)
    assert done.returncode == 0, done.stderr
    assert "already registered" in crisis("orgs", "add", "bka", "--orgs-file", orgs).stdout
    listed = crisis("orgs", "list", "--orgs-file", orgs).stdout.splitlines()
    assert [line.split()[0] for line in listed] == ["bka", "vidshare"]
    bad = crisis("orgs", "add", "no spaces", "--orgs-file", orgs)
    assert bad.returncode == 2 and "no spaces" in bad.stderr


def test_a_key_for_a_new_organisation_registers_it_once_a_registry_exists(tmp_path: Path) -> None:
    orgs, keys = tmp_path / "orgs.json", tmp_path / "keys.json"
    common = ["--orgs-file", str(orgs), "--keys-file", str(keys)]
    # No registry yet: nothing is created.
    assert crisis("keys", "add", "--org", "hub", "--role", "coordinator", *common).returncode == 0
    assert not orgs.exists()
    OrgRegistry(orgs).add("hub")
    done = crisis("keys", "add", "--org", "acme-video", "--role", "provider", *common)
    assert done.returncode == 0, done.stderr
    assert "registered organisation acme-video" in done.stderr
    assert OrgRegistry(orgs).known("acme-video")

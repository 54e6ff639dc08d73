"""`crisis keys`: a key bound to an org and role, printed alone on the last line, stored only as a hash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from crisis.domain.enums import Role
from crisis.keys import KeyStore


def crisis(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crisis.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_add_prints_the_key_last_and_stores_only_its_hash(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    done = crisis("keys", "add", "--org", "acme-video", "--role", "provider", "--keys-file", str(keys_file))
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("cb_")
    assert key not in keys_file.read_text()
    principal = KeyStore(keys_file).authenticate(key)
    assert principal is not None
    assert (principal.org, principal.role) == ("acme-video", Role.PROVIDER)
    assert oct(keys_file.stat().st_mode & 0o777) == "0o600"
    assert json.loads(keys_file.read_text())["keys"][0]["org"] == "acme-video"


def test_revoked_and_expired_keys_no_longer_authenticate(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    key = crisis("keys", "add", "--org", "hub", "--role", "coordinator", "--keys-file", str(keys_file))
    key_id = KeyStore(keys_file).list()[0].id
    assert crisis("keys", "revoke", key_id, "--keys-file", str(keys_file)).returncode == 0
    assert KeyStore(keys_file).authenticate(key.stdout.strip().splitlines()[-1]) is None
    listed = crisis("keys", "list", "--keys-file", str(keys_file)).stdout
    assert "revoked" in listed
    assert "sha256" not in listed


def test_bad_role_and_bad_org_are_refused(tmp_path: Path) -> None:
    keys_file = str(tmp_path / "keys.json")
    assert crisis("keys", "add", "--org", "x", "--role", "admin", "--keys-file", keys_file).returncode == 2
    bad_org = crisis("keys", "add", "--org", "has space", "--role", "provider", "--keys-file", keys_file)
    assert bad_org.returncode == 2
    assert "org" in bad_org.stderr

"""The API key of each participant the runner acts as: inline, from the environment, a keys file, or made."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import yaml

from crisis.domain.envelope import utcnow
from crisis.exercise import yamlmarks
from crisis.exercise.checks import actor
from crisis.exercise.errors import Issue, ScenarioError
from crisis.exercise.files import Refused
from crisis.exercise.loading import Loaded
from crisis.keys import KeyStore

# Generated keys outlive the run only long enough for a debrief; they act on exercise crises only.
GENERATED_LIFETIME = timedelta(days=1)


def actors(loaded: Loaded) -> list[str]:
    """Organisations the runner acts as, in participant order."""
    s = loaded.scenario
    wanted = {p.org for p in s.simulated} | {o for st in s.timeline if (o := actor(s, st)) is not None}
    return [p.org for p in s.participants if p.org in wanted]


def resolve(loaded: Loaded, store_path: Path | None) -> dict[str, str]:
    """org -> key for every actor; ScenarioError (before anything is published) when one is missing."""
    s = loaded.scenario
    shown = str(loaded.path)
    named = _named_keys(loaded) if s.keys_file else {}
    keys: dict[str, str] = {}
    issues: list[Issue] = []
    missing = []
    for index, p in enumerate(s.participants):
        if p.key is not None:
            keys[p.org] = p.key
        elif p.key_env is not None:
            value = os.environ.get(p.key_env)
            if not value:
                issues.append(
                    Issue(shown, None, f"participants[{index}].key_env", f"${p.key_env} is not set")
                )
            else:
                keys[p.org] = value
        elif p.key_name is not None:
            if p.key_name not in named:
                issues.append(
                    Issue(
                        shown,
                        None,
                        f"participants[{index}].key_name",
                        f"no key {p.key_name!r} in {s.keys_file}",
                    )
                )
            else:
                keys[p.org] = named[p.key_name]
        elif p.org in actors(loaded):
            missing.append(p)
    if issues:
        raise ScenarioError(issues)
    if missing:
        store = KeyStore(store_path) if store_path else None
        if store is None:
            raise ScenarioError([Issue(shown, None, "generate_keys", "generating keys needs --keys-file")])
        expires = utcnow() + GENERATED_LIFETIME
        for p in missing:
            label = f"exercise: {s.name}"[:200]
            _, keys[p.org] = store.add(p.org, p.role, exercise_only=True, expires_at=expires, label=label)
    return keys


def _named_keys(loaded: Loaded) -> dict[str, str]:
    assert loaded.scenario.keys_file is not None
    name = loaded.scenario.keys_file
    path = loaded.base / name
    try:
        data = yamlmarks.load(loaded.files.read(loaded.base, name, "keys file")).data
    except Refused as exc:
        raise ScenarioError([Issue(str(path), None, "", str(exc))]) from None
    except (yaml.YAMLError, yamlmarks.YamlRefused):
        # Never the parser's own message: it quotes the line, and this file holds keys.
        raise ScenarioError([Issue(str(path), None, "", "the keys file is not valid YAML")]) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ScenarioError([Issue(str(path), None, "", "a keys file maps key names to keys (strings)")])
    return {str(k): v for k, v in data.items()}

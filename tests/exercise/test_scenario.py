"""Scenario parsing and validation: pure, no broker, no event loop."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from crisis.domain.enums import Role
from crisis.domain.indicators import IndicatorIn
from crisis.exercise import keys as participant_keys
from crisis.exercise.durations import clock, parse_duration
from crisis.exercise.errors import ScenarioError
from crisis.exercise.indicator_files import generated
from crisis.exercise.loading import load, parse
from crisis.exercise.sampling import Delay, rng_for, weighted
from crisis.exercise.scenario import Generate
from crisis.keys import KeyStore
from tests.exercise.support import FAST

EXAMPLES = Path(__file__).parents[2] / "examples" / "scenarios"


def _error(text: str, tmp_path: Path, name: str = "s.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load(path)
    return str(caught.value)


def _line(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if fragment in line)


def test_the_example_scenarios_are_valid() -> None:
    attack = load(EXAMPLES / "live-stream-attack.yaml")
    s = attack.scenario
    assert [p.org for p in s.simulated] == ["streamly", "clipshare", "smallboard"]
    kinds = {item["kind"] for items in attack.shares.values() for item in items}
    assert kinds >= {"url", "sha256", "pdq", "sha1", "metadata", "md5", "vpdq"}
    assert [st.kind for st in s.timeline if st.kind != "note"][-2:] == ["conclude", "close"]
    assert "change_level" in [st.kind for st in s.timeline]
    warning = load(EXAMPLES / "early-warning.yaml").scenario
    opened = next(st.open for st in warning.timeline if st.open)
    assert opened is not None and opened.status == "monitoring"
    assert not any(st.activate or st.change_level or st.conclude for st in warning.timeline)
    assert warning.timeline[-1].kind == "close"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("00:05:00", 300.0),
        ("05:00", 300.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("30s", 30.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["00:70:00", "soon", True, "1:2:3:4", [1]])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_unquoted_clock_times_read_as_seconds(tmp_path: Path) -> None:
    # YAML 1.1 reads 1:30:00 (no leading zero, unquoted) as the base-60 integer 5400: still seconds.
    text = FAST.replace("  - at: 1500", "  - at: 0:25:00").replace("  - at: 1800", "  - at: 1:30:00")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert [st.at for st in load(path).scenario.timeline][-2:] == [1500.0, 5400.0]


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ('"9f2b5c1e0d8a', '"9x2b5c1e0d8a', "timeline[1].share.indicators[0].value", "hexadecimal"),
        ("level: 2, criteria", "level: 5, criteria", "timeline[0].open.level", "less than or equal to 3"),
        ("median_s: 300", "median_z: 300", "participants[3].simulate.receipt.median_z", "Extra inputs"),
        ("role: authority", "role: regulator", "participants[1].role", "coordinator"),
        ("at: 120", 'at: "two minutes"', "timeline[2].at", "not a duration"),
        ("at: 120\n", "at: 120\n    close: {}\n", "timeline[2]", "one inject per step"),
        (
            "{kind: pdq, count: 2}",
            "{kind: metadata, count: 2}",
            "timeline[1].share.generate",
            "cannot be generated",
        ),
    ],
)
def test_errors_name_file_field_and_line(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    text = FAST.replace(old, new)
    assert text != FAST
    error = _error(text, tmp_path)
    line = _line(text, new.splitlines()[0].strip())
    assert f"s.yaml:{line}: {field}" in error
    assert message in error


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("at: 120", "at: 30", "timeline[2].at", "time order"),
        (
            "    change_level: {level: 3}",
            "    change_level: {level: 2}",
            "timeline[2].change_level",
            "already at",
        ),
        (
            "    conclude: {reason: over}",
            "    activate: {level: 1, criteria: [depicts_violence]}",
            "timeline[3].activate",
            "only a monitoring",
        ),
        (
            "    conclude: {reason: over}",
            "    activate: {level: 1}",
            "timeline[3].activate.criteria",
            "at least one criterion",
        ),
        ("    close: {}", "    close: {by: bka}", "timeline[4].close.by", "only a coordinator"),
        ("      by: bka", "      by: nobody", "timeline[1].share.by", "not a participant"),
        ("generate_keys: true", "generate_keys: false", "participants[0]", "has no key"),
        ("expect: {receipt", "expect: {providers: [hub], receipt", "expect.providers[0]", "not a provider"),
    ],
)
def test_rules_across_fields_name_the_line(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    text = FAST.replace(old, new, 1)
    assert text != FAST
    error = _error(text, tmp_path)
    assert f": {field}: " in error and message in error
    assert "s.yaml:" in error


def test_a_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    text = FAST.replace("  - at: 120", "  - at: [120")
    error = _error(text, tmp_path)
    assert "not valid YAML" in error
    assert re.search(r"s\.yaml:\d+: ", error)


def test_the_first_inject_must_open(tmp_path: Path) -> None:
    text = FAST.replace("  - at: 0\n    open:", "  - at: 0\n    note: start\n  - at: 1\n    open:")
    load_ok = tmp_path / "ok.yaml"
    load_ok.write_text(text)
    assert load(load_ok).scenario.timeline[0].kind == "note"
    bad = FAST.replace(
        "    open: {title: Drill, status: activated, level: 2, criteria: [ongoing_violent_event]}",
        "    note: x",
    )
    assert "the first inject must open the crisis" in _error(bad, tmp_path)


def test_indicator_files_report_their_own_lines(tmp_path: Path) -> None:
    (tmp_path / "ok.csv").write_text(
        "kind,value\nmd5,0123456789abcdef0123456789abcdef\nurl,https://a.example/x\n"
    )
    (tmp_path / "bad.jsonl").write_text(
        '{"kind": "sha1", "value": "3c8b2f4d9e1a7b6c5d4e3f2a1b0c9d8e7f6a5b4c"}\n'
        '\n{"kind": "sha1", "value": "abc"}\n'
    )
    (tmp_path / "bad.yaml").write_text("- kind: url\n  value: https://x.example/\n- kind: pdq\n  value: zz\n")
    share = "      by: bka\n      file: {}\n"
    base = FAST.replace("      by: bka\n", share.format("ok.csv"))
    path = tmp_path / "s.yaml"
    path.write_text(base)
    items = load(path).shares[1]
    assert [i["kind"] for i in items[-2:]] == ["pdq", "pdq"] and len(items) == 6
    error = _error(FAST.replace("      by: bka\n", share.format("bad.jsonl")), tmp_path)
    assert "bad.jsonl:3: value: a sha1 value must be 40 hex characters" in error
    error = _error(FAST.replace("      by: bka\n", share.format("bad.yaml")), tmp_path)
    assert "bad.yaml:4: value: a pdq value must be" in error
    error = _error(FAST.replace("      by: bka\n", share.format("missing.jsonl")), tmp_path)
    assert "missing.jsonl: cannot read the indicators file: no such file" in error


@pytest.mark.parametrize("kind", ["md5", "sha1", "sha256", "sha512", "pdq", "url", "tmk", "vpdq"])
def test_generated_indicators_are_valid_distinct_and_reproducible(kind: str) -> None:
    spec = Generate(kind=kind, count=20)  # type: ignore[arg-type]
    items = generated(7, "3.0", spec)
    assert items == generated(7, "3.0", spec)
    assert items != generated(8, "3.0", spec)
    for item in items:
        IndicatorIn.model_validate(item)
    assert len({str(sorted(i.items())) for i in items}) == 20


def test_delays_sample_within_their_bounds() -> None:
    rng = random.Random(1)
    assert Delay.model_validate(120).sample(rng) == 120
    assert Delay.model_validate("00:02:00").sample(rng) == 120
    uniform = Delay.model_validate({"distribution": "uniform", "min_s": 10, "max_s": 20})
    assert all(10 <= uniform.sample(rng) <= 20 for _ in range(200))
    lognormal = Delay.model_validate({"distribution": "lognormal", "median_s": 60, "sigma": 1, "max_s": 300})
    samples = sorted(lognormal.sample(rng) for _ in range(2001))
    assert samples[-1] <= 300 and 40 < samples[1000] < 90
    assert rng_for(1, "a", "b").random() == rng_for(1, "a", "b").random()
    assert weighted(rng_for(1, "x"), {"removed": 1, "blocked": 0}) == "removed"


def test_keys_inline_env_named_and_generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "keys.yaml").write_text("hub-key: cb_named_secret\n")
    monkeypatch.setenv("BKA_KEY", "cb_env_secret")
    text = (
        FAST.replace("generate_keys: true", "generate_keys: true\nkeys_file: keys.yaml")
        .replace("{org: hub, role: coordinator}", "{org: hub, role: coordinator, key_name: hub-key}")
        .replace("{org: bka, role: authority}", "{org: bka, role: authority, key_env: BKA_KEY}")
        .replace("  - org: quick\n", "  - org: quick\n    key: cb_inline_secret\n")
    )
    loaded = parse(text, tmp_path / "s.yaml")
    store_path = tmp_path / "server-keys.json"
    keys = participant_keys.resolve(loaded, store_path)
    assert keys["hub"] == "cb_named_secret" and keys["bka"] == "cb_env_secret"
    assert keys["quick"] == "cb_inline_secret"
    [made] = KeyStore(store_path).list()
    assert (made.org, made.role, made.exercise_only) == ("steady", Role.PROVIDER, True)
    assert made.expires_at is not None
    assert KeyStore(store_path).authenticate(keys["steady"]) is not None


def test_a_missing_environment_key_fails_before_anything(tmp_path: Path) -> None:
    text = FAST.replace("{org: bka, role: authority}", "{org: bka, role: authority, key_env: NOPE_NOT_SET}")
    loaded = parse(text, tmp_path / "s.yaml")
    with pytest.raises(ScenarioError, match=r"participants\[1\]\.key_env: \$NOPE_NOT_SET is not set"):
        participant_keys.resolve(loaded, tmp_path / "k.json")
    assert not (tmp_path / "k.json").exists()


def test_clock() -> None:
    assert clock(0) == "00:00:00" and clock(3725.4) == "01:02:05" and clock(-5) == "-00:00:05"

"""STIX 2.1 export: valid for the OASIS validator (strict), patterns per kind, TLP 2.0 markings."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from stix2validator import ValidationOptions, validate_string

from crisis.domain.crisis import CrisisState
from crisis.domain.enums import ActionOutcome, IndicatorKind, Mode, Status, Tlp
from crisis.domain.indicators import IndicatorIn, normalise
from crisis.interop.export import CrisisExport, ProviderAction, SharedIndicator
from crisis.interop.stix import bundle, pattern

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ITEMS: dict[IndicatorKind, dict[str, Any]] = {
    IndicatorKind.URL: {"value": "HTTP://Example.COM:80/Path/./it's?q=1#frag"},
    IndicatorKind.MD5: {"value": "c" * 32},
    IndicatorKind.SHA1: {"value": "d" * 40},
    IndicatorKind.SHA256: {"value": "a" * 64},
    IndicatorKind.SHA512: {"value": "e" * 128},
    IndicatorKind.PDQ: {"value": "f" * 64, "quality": 90},
    IndicatorKind.TMK: {"blob": {"sha256": "b" * 64, "size": 1234}},
    IndicatorKind.VPDQ: {"blob": {"sha256": "9" * 64, "size": 99}},
    IndicatorKind.METADATA: {"context": {"platform": "vidshare", "labels": ["livestream"]}},
}


def crisis(tlp: Tlp = Tlp.AMBER) -> CrisisState:
    return CrisisState(
        id=str(uuid.uuid4()),
        title="Live-streamed attack",
        summary="Footage circulating.",
        mode=Mode.LIVE,
        status=Status.ACTIVATED,
        level=2,
        tlp=tlp,
        created_by="hub",
        created_at=T0,
        updated_at=T0,
        version=2,
    )


def shared(kind: IndicatorKind, tlp: Tlp, n: int = 0, **extra: Any) -> SharedIndicator:
    indicator = normalise(IndicatorIn(kind=kind, **ITEMS[kind]))
    at = T0 + timedelta(minutes=n)
    return SharedIndicator(str(uuid.uuid4()), indicator, "bka", at, tlp, **extra)


def objects(export: CrisisExport) -> list[dict[str, Any]]:
    text = bundle(export).serialize()
    results = validate_string(text, ValidationOptions(strict=True))
    messages = [str(e) for e in results.errors] + [str(w) for w in results.warnings]
    assert results.is_valid and not messages, messages
    found: list[dict[str, Any]] = json.loads(text)["objects"]
    return found


@pytest.mark.parametrize("tlp", list(Tlp))
def test_every_kind_at_every_tlp_validates_without_a_warning(tlp: Tlp) -> None:
    items = [shared(kind, tlp, n) for n, kind in enumerate(IndicatorKind)]
    out = objects(CrisisExport(crisis(tlp), items))
    markings = [o for o in out if o["type"] == "marking-definition"]
    assert [m["name"] for m in markings] == [f"TLP:{tlp.upper()}"]
    assert all(o["object_marking_refs"] == [markings[0]["id"]] for o in out if "object_marking_refs" in o)
    assert {o["id"] for o in out if o["type"] == "indicator"} == {
        f"indicator--{i.id}" for i in items if i.indicator.kind is not IndicatorKind.METADATA
    }
    report = next(o for o in out if o["type"] == "report")
    assert set(report["object_refs"]) == {o["id"] for o in out if o["type"] in {"indicator", "note"}}


def test_patterns_name_the_hash_algorithm_or_the_canonical_url() -> None:
    def pattern_of(kind: IndicatorKind) -> str:
        return pattern(normalise(IndicatorIn(kind=kind, **ITEMS[kind])))

    assert pattern_of(IndicatorKind.SHA256) == f"[file:hashes.'SHA-256' = '{'a' * 64}']"
    assert pattern_of(IndicatorKind.MD5) == f"[file:hashes.'MD5' = '{'c' * 32}']"
    assert pattern_of(IndicatorKind.PDQ) == f"[file:hashes.'PDQ' = '{'f' * 64}']"
    assert pattern_of(IndicatorKind.TMK) == f"[file:hashes.'SHA-256' = '{'b' * 64}' AND file:size = 1234]"
    url = pattern_of(IndicatorKind.URL)
    assert url.startswith("[url:value = 'http://example.com/Path/it\\'s?q=1")  # canonical, quote escaped
    assert re.search(r"#frag", url) is None


def test_each_object_carries_its_own_label_and_the_report_the_crisis_label() -> None:
    items = [shared(IndicatorKind.SHA256, Tlp.RED), shared(IndicatorKind.MD5, Tlp.GREEN, 1)]
    out = objects(CrisisExport(crisis(Tlp.AMBER), items))
    names = {o["id"]: o["name"] for o in out if o["type"] == "marking-definition"}
    assert sorted(names.values()) == ["TLP:AMBER", "TLP:GREEN", "TLP:RED"]
    by_id = {o["id"]: o for o in out}
    assert names[by_id[f"indicator--{items[0].id}"]["object_marking_refs"][0]] == "TLP:RED"
    assert names[by_id[f"indicator--{items[1].id}"]["object_marking_refs"][0]] == "TLP:GREEN"
    report = next(o for o in out if o["type"] == "report")
    assert names[report["object_marking_refs"][0]] == "TLP:AMBER"


def test_sightings_actions_and_retractions() -> None:
    seen_again = T0 + timedelta(hours=1)
    item = shared(IndicatorKind.SHA256, Tlp.AMBER, sightings=[("vidshare", seen_again)], retracted=True)
    actions = [
        ProviderAction("a1", item.id, "vidshare", ActionOutcome.REMOVED, T0 + timedelta(minutes=20), "gone"),
        ProviderAction(
            "a2", item.id, "clipshare", ActionOutcome.DISAGREE, T0 + timedelta(minutes=30), "news"
        ),
        # An action on an indicator the reader was not given: nothing of it may appear.
        ProviderAction("a3", str(uuid.uuid4()), "secretorg", ActionOutcome.REMOVED, T0),
    ]
    out = objects(CrisisExport(crisis(), [item], actions))
    indicator = next(o for o in out if o["type"] == "indicator")
    assert indicator["revoked"] is True
    sighting = next(o for o in out if o["type"] == "sighting")
    assert sighting["sighting_of_ref"] == indicator["id"]
    assert sighting["first_seen"].startswith("2026-12-01T11:00:00")
    notes = sorted((o for o in out if o["type"] == "note"), key=lambda o: o["abstract"])
    assert [(n["abstract"], n["object_refs"]) for n in notes] == [
        ("disagree", [indicator["id"]]),
        ("removed", [indicator["id"]]),
    ]
    assert [o["opinion"] for o in out if o["type"] == "opinion"] == ["disagree"]
    names = {o["name"] for o in out if o["type"] == "identity"}
    assert "secretorg" not in names and {"bka", "vidshare", "clipshare", "hub"} <= names


def test_exporting_twice_gives_the_same_objects() -> None:
    """Same ids and same versions: a TAXII client polling with added_after sees nothing new."""
    export = CrisisExport(crisis(), [shared(IndicatorKind.SHA1, Tlp.AMBER, sightings=[("x", T0)])])
    first = objects(export)
    assert first == objects(export)

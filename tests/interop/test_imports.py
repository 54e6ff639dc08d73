"""Imports: STIX bundles (this project's and other tools'), MISP documents and hash lists told apart by
content; TAXII paging that a new object never shifts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from crisis.domain.enums import IndicatorKind, Tlp
from crisis.interop.export import CrisisExport
from crisis.interop.formats import Format, detect, read
from crisis.interop.misp import event
from crisis.interop.stix import bundle, read_bundle
from crisis.interop.submissions import share_label
from crisis.interop.taxii import page, stored
from tests.interop.test_stix import ITEMS, T0, crisis, shared


def foreign(pattern: str, **extra: Any) -> dict[str, Any]:
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--0b9c1f0e-3c5b-4d8e-9d0a-0f6a3c2b1e4d",
        "created": "2026-12-01T10:00:00.000Z",
        "modified": "2026-12-01T10:00:00.000Z",
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2026-12-01T10:00:00Z",
        **extra,
    }
    return {"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": [indicator]}


def test_a_bundle_of_every_kind_reads_back_to_the_same_submissions() -> None:
    items = [shared(kind, tlp, n) for n, (kind, tlp) in enumerate(zip(IndicatorKind, Tlp, strict=False))]
    items += [shared(kind, Tlp.AMBER, 10 + n) for n, kind in enumerate(IndicatorKind)]
    document = json.loads(bundle(CrisisExport(crisis(Tlp.CLEAR), items)).serialize())
    found = read_bundle(document)
    assert found.skipped == []
    assert found.tlp is Tlp.RED  # the strictest label of what was read
    kinds = [i["kind"] for i in found.items]
    assert sorted(kinds) == sorted(str(i.indicator.kind) for i in items)
    pdq = next(i for i in found.items if i["kind"] == "pdq")
    assert pdq == {"kind": "pdq", "value": "f" * 64, "quality": 90}
    url = next(i for i in found.items if i["kind"] == "url")
    assert url["value"] == ITEMS[IndicatorKind.URL]["value"]  # as seen, quotes unescaped
    assert {"kind": "tmk", "blob": {"sha256": "b" * 64, "size": 1234}} in found.items


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (
            "[file:hashes.MD5 = 'D41D8CD98F00B204E9800998ECF8427E']",
            {"md5": "D41D8CD98F00B204E9800998ECF8427E"},
        ),
        ("[file:hashes.'SHA-256' = '" + "a" * 64 + "']", {"sha256": "a" * 64}),
        (
            "[file:hashes.'SHA-1' = '" + "b" * 40 + "' AND file:hashes.MD5 = '" + "c" * 32 + "']",
            {"sha1": "b" * 40, "md5": "c" * 32},
        ),
        ("[url:value = 'https://example.com/a']", {"url": "https://example.com/a"}),
    ],
)
def test_simple_equality_patterns_from_other_tools(pattern: str, expected: dict[str, str]) -> None:
    found = read_bundle(
        foreign(
            pattern,
            object_marking_refs=[
                "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"  # TLP 1.0 amber
            ],
        )
    )
    assert {i["kind"]: i["value"] for i in found.items} == expected
    assert found.tlp is Tlp.AMBER and found.skipped == []


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("[ipv4-addr:value = '198.51.100.1']", "not an equality on file hashes or url:value"),
        ("[file:hashes.MD5 = 'a' OR file:hashes.MD5 = 'b']", "not an equality"),
        ("[file:hashes.'SHA3-256' = 'ab']", "'SHA3256' is not an indicator kind here"),
        ("[file:size = 10]", "names no file hash and no URL"),
    ],
)
def test_patterns_it_cannot_read_are_skipped_with_the_reason(pattern: str, reason: str) -> None:
    found = read_bundle(foreign(pattern))
    assert found.items == [] and len(found.skipped) == 1
    assert found.skipped[0].startswith("objects[0] (indicator--") and reason in found.skipped[0]


def test_revoked_indicators_are_not_imported() -> None:
    assert read_bundle(foreign("[url:value = 'https://x.example/']", revoked=True)).items == []


def test_formats_are_told_by_content() -> None:
    export = CrisisExport(crisis(), [shared(IndicatorKind.MD5, Tlp.AMBER)])
    stix_text = bundle(export).serialize()
    misp_text = json.dumps(event(export))
    assert detect(stix_text) is Format.STIX
    assert detect(misp_text) is Format.MISP
    assert detect(json.dumps({"response": [event(export), event(export)]})) is Format.MISP
    assert detect("C" * 32 + "  file.bin\n") is Format.HASHES
    assert detect('{"kind": "md5", "value": "x"}\n{"kind": "md5"}') is None  # JSON lines: the caller's
    both = read(json.dumps([event(export), event(export)]), Format.MISP)
    assert both.items == [{"kind": "md5", "value": "c" * 32}] * 2 and both.tlp is Tlp.AMBER
    with pytest.raises(ValueError, match="'kind' is for hash lists"):
        read(stix_text, Format.STIX, IndicatorKind.SHA256)
    with pytest.raises(ValueError, match="not a STIX bundle"):
        read(misp_text, Format.STIX)


def test_an_import_never_shares_wider_than_its_source_or_its_crisis() -> None:
    assert share_label(Tlp.RED, Tlp.AMBER) is Tlp.RED
    assert share_label(Tlp.GREEN, Tlp.AMBER) is None  # the crisis's default, AMBER
    assert share_label(None, Tlp.AMBER) is None


def test_taxii_pages_are_stable_when_objects_are_added() -> None:
    items = [shared(IndicatorKind.MD5, Tlp.AMBER, n) for n in range(5)]
    export = CrisisExport(crisis(), items)
    objects = json.loads(bundle(export).serialize())["objects"]
    first = page(stored(objects, T0), limit=3)
    assert first.more and first.next
    later = CrisisExport(crisis(), [*items, shared(IndicatorKind.SHA1, Tlp.AMBER, 60)])
    grown = stored(json.loads(bundle(later).serialize())["objects"], T0)
    rest = page(grown, next_token=first.next, limit=100)
    walked = [s.object["id"] for s in [*first.items, *rest.items]]
    assert len(walked) == len(set(walked)) == len(grown)
    assert not rest.more and rest.next is None
    newest = page(grown, added_after=T0 + timedelta(minutes=10), limit=100)
    assert sorted(s.object["type"] for s in newest.items) == ["indicator", "report"]
    with pytest.raises(ValueError, match="not a next token"):
        page(grown, next_token="bm90LWEtdG9rZW4", limit=1)

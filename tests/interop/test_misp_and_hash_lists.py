"""MISP export re-imports to the same indicators (PyMISP loads it); hash lists as tools write them."""

from __future__ import annotations

import json

from pymisp import MISPEvent

from crisis.domain.enums import IndicatorKind, Tlp
from crisis.domain.indicators import IndicatorIn, normalise
from crisis.interop.export import CrisisExport
from crisis.interop.hashlist import read_hash_list
from crisis.interop.misp import event, read_event
from tests.interop.test_stix import crisis, shared


def test_a_misp_export_loads_in_pymisp_and_reimports_to_the_same_indicators() -> None:
    items = [shared(kind, Tlp.AMBER, n) for n, kind in enumerate(IndicatorKind)]
    retracted = shared(IndicatorKind.SHA1, Tlp.AMBER, retracted=True)
    document = event(CrisisExport(crisis(Tlp.AMBER_STRICT), [*items, retracted]))

    misp = MISPEvent()
    misp.load(json.dumps(document))
    assert misp.info == "Live-streamed attack"
    assert {t.name for t in misp.tags} >= {"tlp:amber+strict"}
    assert len(misp.attributes) + len(misp.objects) == len(items)

    back = read_event(json.loads(misp.to_json()))
    assert back.skipped == []
    assert back.tlp is Tlp.AMBER_STRICT
    again = sorted((normalise(IndicatorIn.model_validate(i)) for i in back.items), key=repr)
    assert again == sorted((i.indicator for i in items), key=repr)


def test_a_foreign_misp_event_gives_what_it_can_and_says_what_it_skipped() -> None:
    document = {
        "Event": {
            "info": "from another hub",
            "Tag": [{"name": "tlp:white"}],
            "Attribute": [
                {"type": "sha256", "value": "A" * 64},
                {"type": "ip-dst", "value": "192.0.2.1"},
                {"type": "url", "value": "https://example.org/x", "deleted": True},
            ],
        }
    }
    back = read_event(document)
    assert back.items == [{"kind": "sha256", "value": "A" * 64}]
    assert back.tlp is Tlp.CLEAR  # TLP 1.0's white is 2.0's clear
    assert back.skipped == ["Attribute[1]: MISP type 'ip-dst' is not an indicator kind here"]


def test_hash_lists_from_common_tools() -> None:
    sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
    lines = [
        "# md5sum and sha1sum output, a bare sha512, a BSD-style line",
        "d41d8cd98f00b204e9800998ecf8427e  empty.bin",
        "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709 *empty.bin",
        "",
        "f" * 128,
        f"SHA256 (clip.mp4) = {sha256}",
        sha256,
        "not-a-hash",
        "abc",
    ]
    parsed = read_hash_list(lines)
    assert parsed.items == [
        {"kind": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e"},
        {"kind": "sha1", "value": "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"kind": "sha512", "value": "f" * 128},
        {"kind": "sha256", "value": sha256.lower()},
    ]
    assert [(e.line, e.message) for e in parsed.errors] == [
        (7, "64 hex digits is a sha256 or a pdq hash: name the kind of the list"),
        (8, "not a hash (hex digits, optionally followed by a file name)"),
        (9, "3 hex digits is no known hash length (32, 40, 64, 128)"),
    ]
    assert all("not-a-hash" not in e.message for e in parsed.errors)


def test_a_named_kind_reads_sha256_or_pdq_lists_and_refuses_other_lengths() -> None:
    parsed = read_hash_list(["a" * 64, "b" * 32], kind=IndicatorKind.PDQ)
    assert parsed.items == [{"kind": "pdq", "value": "a" * 64}]
    assert [e.message for e in parsed.errors] == ["a pdq hash has 64 hex digits, this one 32"]

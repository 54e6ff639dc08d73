"""Exports and imports over the API: STIX and MISP carry only what the reader may read, files in the
field's formats share through the same path as JSON batches (same rules, bound and per-item verdicts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from stix2validator import ValidationOptions, validate_string

from crisis.config import Settings
from crisis.orgs import OrgRegistry
from tests.api.conftest import ORGS, Actors
from tests.cli.test_officer import crisis as run_cli
from tests.conftest import Stack

pytestmark = pytest.mark.kafka

REGISTERED = [*ORGS.values(), "tubeco"]
TLPS = ["clear", "green", "amber", "amber+strict", "red"]
HIDDEN_MD5 = "7" * 32
ITEMS: list[dict[str, Any]] = [
    {"kind": "url", "value": "HTTPS://Video.Example.com:443/watch/./v?id=1#t=3"},
    {"kind": "md5", "value": "C" * 32},
    {"kind": "sha1", "value": "d" * 40},
    {"kind": "sha256", "value": "a" * 64},
    {"kind": "sha512", "value": "e" * 128},
    {"kind": "pdq", "value": "f" * 64, "quality": 90},
    {"kind": "tmk", "blob": {"sha256": "b" * 64, "size": 1234}},
    {"kind": "vpdq", "blob": {"sha256": "9" * 64, "size": 99}},
    {"kind": "metadata", "context": {"platform": "vidshare", "labels": ["livestream"]}},
]


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    result: Settings = make_settings()
    registry = OrgRegistry(result.orgs_file)
    for org in REGISTERED:
        registry.add(org)
    return result


def audience(tlp: str) -> dict[str, Any]:
    return {"tlp": tlp, "tlprecipients": ["vidshare"]} if tlp in ("amber+strict", "red") else {"tlp": tlp}


async def crisis_with_everything(actors: Actors) -> tuple[str, str]:
    """A TLP:CLEAR crisis with every kind at every TLP readable by vidshare, a sighting and actions, and a
    RED indicator for tubeco only (sighted and acted on by tubeco). Returns (crisis id, hidden id)."""
    cid = (await actors.crisis(tlp="clear"))["id"]
    for tlp in TLPS:
        r = await actors.share(cid, ITEMS, **audience(tlp))
        assert r.json()["counts"]["created"] == len(ITEMS), r.text
    hidden = await actors.shared_id(
        cid, {"kind": "md5", "value": HIDDEN_MD5}, tlp="red", tlprecipients=["tubeco"]
    )
    again = await actors.share(
        cid, [{"kind": "md5", "value": HIDDEN_MD5}], "provider", "tubeco", tlp="red", tlprecipients=["bka"]
    )
    assert again.json()["items"][0]["status"] == "sighting", again.text
    acted = {"indicator_id": hidden, "outcome": "removed", "note": "tubeco took it down"}
    r = await actors.call("POST", f"/v1/crises/{cid}/actions", "provider", "tubeco", json=acted)
    assert r.status_code == 201, r.text
    # vidshare sees the GREEN md5 again (a sighting) and disagrees with the GREEN sha1.
    await actors.shared_id(cid, {"kind": "md5", "value": "c" * 32}, "provider", tlp="green")
    listed = (await actors.call("GET", f"/v1/crises/{cid}/indicators", "provider")).json()["items"]
    sha1 = next(i for i in listed if i["kind"] == "sha1" and i["tlp"] == "green")
    body = {"indicator_id": sha1["indicator_id"], "outcome": "disagree", "note": "not the attack video"}
    r = await actors.call("POST", f"/v1/crises/{cid}/actions", "provider", json=body)
    assert r.status_code == 201, r.text
    return cid, hidden


def assert_nothing_of(text: str, hidden: str) -> None:
    for secret in (hidden, HIDDEN_MD5, "tubeco"):
        assert secret not in text


async def test_stix_export_validates_and_holds_only_what_the_reader_may_read(actors: Actors) -> None:
    cid, hidden = await crisis_with_everything(actors)
    r = await actors.call("GET", f"/v1/crises/{cid}/stix", "provider")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/stix+json;version=2.1"
    results = validate_string(r.text, ValidationOptions(strict=True))
    messages = [str(e) for e in results.errors] + [str(w) for w in results.warnings]
    assert results.is_valid and not messages, messages
    assert_nothing_of(r.text, hidden)

    objects = r.json()["objects"]
    indicators = [o for o in objects if o["type"] == "indicator"]
    assert len(indicators) == len(TLPS) * (len(ITEMS) - 1)  # metadata is a note
    markings = {o["name"] for o in objects if o["type"] == "marking-definition"}
    assert markings == {"TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"}
    assert [o["where_sighted_refs"] for o in objects if o["type"] == "sighting"] == [
        [next(o["id"] for o in objects if o["type"] == "identity" and o["name"] == "vidshare")]
    ]
    assert [o["explanation"] for o in objects if o["type"] == "opinion"] == ["not the attack video"]
    assert len([o for o in objects if o["type"] == "note" and o["abstract"] == "disagree"]) == 1

    # The sharer of the RED indicator sees it; so does the organisation it was addressed to.
    for role, org in (("authority", None), ("provider", "tubeco")):
        r = await actors.call("GET", f"/v1/crises/{cid}/stix", role, org)
        assert f"indicator--{hidden}" in r.text


async def test_misp_export_holds_only_what_the_reader_may_read_and_reimports_the_same(
    actors: Actors,
) -> None:
    cid, hidden = await crisis_with_everything(actors)
    r = await actors.call("GET", f"/v1/crises/{cid}/misp", "provider")
    assert r.status_code == 200, r.text
    assert_nothing_of(r.text, hidden)

    target = (await actors.crisis(tlp="clear"))["id"]
    headers = {"Content-Type": "application/misp+json"}
    imported = await actors.call(
        "POST", f"/v1/crises/{target}/indicators/import", "provider", content=r.content, headers=headers
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["skipped"] == []
    assert await indicators_of(actors, target) == await indicators_of(actors, cid)


async def test_a_stix_bundle_reimports_to_the_same_indicators(actors: Actors) -> None:
    cid, _ = await crisis_with_everything(actors)
    bundle = await actors.call("GET", f"/v1/crises/{cid}/stix", "provider")
    target = (await actors.crisis(tlp="clear"))["id"]
    headers = {"Content-Type": "application/json"}  # told apart by content
    path = f"/v1/crises/{target}/indicators/import"
    # One import shares at one label: by default the strictest in the file (never wider than the source
    # said), here RED, which names its recipients: the caller must name them or choose the label.
    r = await actors.call("POST", path, "provider", content=bundle.content, headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "recipients_required", r.text
    params = {"tlp": "amber"}
    r = await actors.call("POST", path, "provider", content=bundle.content, headers=headers, params=params)
    # The same value at five labels in the source is one indicator at one label here, seen again four times.
    assert r.status_code == 200 and r.json()["counts"] == {"created": 9, "sighting": 36, "rejected": 0}
    assert await indicators_of(actors, target) == await indicators_of(actors, cid)


async def indicators_of(actors: Actors, cid: str) -> set[str]:
    """Each readable live indicator's kind, canonical form, PDQ quality, blob and context."""
    r = await actors.call("GET", f"/v1/crises/{cid}/indicators", "provider", params={"retracted": False})
    keep = ("kind", "canonical", "quality", "blob", "context")
    return {json.dumps({k: i.get(k) for k in keep}, sort_keys=True) for i in r.json()["items"]}


async def test_a_hash_list_shares_with_per_line_errors(actors: Actors) -> None:
    cid = (await actors.crisis())["id"]
    text = "\n".join(
        [
            "# exported by sha256sum",
            "A" * 64 + "  clip.mp4",
            "SHA256 (clip2.mp4) = " + "b" * 64,
            "not a hash",
            "c" * 63,
        ]
    )
    path = f"/v1/crises/{cid}/indicators/import"
    plain = {"Content-Type": "text/plain"}
    r = await actors.call("POST", path, "authority", content=text, headers=plain)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] == {"created": 1, "sighting": 0, "rejected": 0}  # the labelled line
    assert [s.split(":")[0] for s in body["skipped"]] == ["line 2", "line 4", "line 5"]
    assert "name the kind" in body["skipped"][0]

    r = await actors.call("POST", path, "authority", content=text, headers=plain, params={"kind": "sha256"})
    assert r.json()["counts"] == {"created": 1, "sighting": 1, "rejected": 0}
    listed = (await actors.call("GET", f"/v1/crises/{cid}/indicators", "authority")).json()["items"]
    assert sorted(i["canonical"] for i in listed) == ["a" * 64, "b" * 64]


async def test_imports_are_bounded_and_refuse_what_they_cannot_read(actors: Actors) -> None:
    cid = (await actors.crisis())["id"]
    path = f"/v1/crises/{cid}/indicators/import"
    many = "\n".join(f"{n:032x}" for n in range(1001))
    r = await actors.call("POST", path, "authority", content=many, headers={"Content-Type": "text/plain"})
    assert r.status_code == 413 and r.json()["code"] == "batch_too_large", r.text
    r = await actors.call("POST", path, "authority", content="x", headers={"Content-Type": "image/png"})
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json", r.text
    stix = {"Content-Type": "application/stix+json"}
    r = await actors.call("POST", path, "authority", content="{", headers=stix)
    assert r.status_code == 422 and "not JSON" in r.json()["detail"], r.text
    r = await actors.call("POST", path, "observer", content="{}", headers=stix)
    assert r.status_code == 403, r.text
    plain = {"Content-Type": "text/plain"}
    r = await actors.call(
        "POST", "/v1/crises/nope/indicators/import", "authority", content="a" * 32, headers=plain
    )
    assert r.status_code == 404, r.text
    # A file with nothing to share says nothing about a crisis the key may not read, nor one that is not.
    unreadable = (await actors.crisis(tlp="red", tlprecipients=["hub"]))["id"]
    for target in ("nope", unreadable):
        r = await actors.call(
            "POST", f"/v1/crises/{target}/indicators/import", "authority", content="not a hash", headers=plain
        )
        assert r.status_code == 404 and r.json()["code"] == "not_found", r.text
    # JSON that is neither a STIX bundle nor a MISP event is not read as a hash list.
    json_type = {"Content-Type": "application/json"}
    r = await actors.call("POST", path, "authority", content="-1.99e16", headers=json_type)
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type", r.text
    r = await actors.call("GET", "/v1/crises/nope/stix", "authority")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await actors.call("GET", f"/v1/crises/{cid}/misp", "observer")
    assert r.status_code == 403, r.text


async def test_cli_shares_a_stix_file_and_exports_misp(
    actors: Actors, api_stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cid, _ = await crisis_with_everything(actors)
    bundle = tmp_path / "crisis.stix.json"
    assert await run_cli(api_stack, actors.key("provider"), "export", cid, "-o", str(bundle)) == 0
    target = (await actors.crisis(tlp="clear"))["id"]
    capsys.readouterr()
    share = ("share", target, "--file", str(bundle), "--tlp", "amber")
    assert await run_cli(api_stack, actors.key("provider"), *share) == 0
    assert "created 9, sighting 36, rejected 0" in capsys.readouterr().out
    assert await indicators_of(actors, target) == await indicators_of(actors, cid)

    hashes = tmp_path / "list.txt"
    hashes.write_text("F" * 64 + "\n" + "zz\n")
    share = ("share", target, "--file", str(hashes), "--kind", "pdq")
    code = await run_cli(api_stack, actors.key("provider"), *share)
    out, err = capsys.readouterr()
    assert code == 3 and "skipped list.txt: line 2: not a hash" in out and "created 1," in out
    assert "1 entries of" in err
    misp = tmp_path / "crisis.misp.json"
    assert await run_cli(api_stack, actors.key("provider"), "export", cid, "--misp", "-o", str(misp)) == 0
    assert json.loads(misp.read_text())["Event"]["info"] == "Live-streamed attack"
    assert await run_cli(api_stack, actors.key("provider"), "export", cid) == 0
    assert '"type": "bundle"' in capsys.readouterr().out

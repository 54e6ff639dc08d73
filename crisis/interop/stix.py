"""A crisis as a STIX 2.1 bundle: what a TAXII client, OpenCTI or MISP's STIX import reads.

Pure: the caller hands over only what the reader may read (the domain's audience rule decides), and this
module maps it. The mapping, documented in docs/interop.md:

* the crisis is a `report` (published when declared) that refers to every exported object;
* each organisation that shared or acted is an `identity` (class organization), the `created_by_ref` of its
  objects;
* each indicator is an `indicator` with a STIX pattern: file hashes as `file:hashes.'SHA-256'` and so on,
  URLs as `url:value` (the canonical form), PDQ as `file:hashes.PDQ`, video hashes (tmk, vpdq) by the sha256
  and size of their hash file; the kind, PDQ quality and video-hash reference travel in this project's
  property extension (`EXTENSION`); a retracted indicator is `revoked`;
* metadata indicators (platform, content type, language, labels) are `note`s on the report;
* each sighting (a repeat share) is a `sighting` of the indicator, seen by the organisation that shared again;
* each provider action is a `note` on the indicator (abstract: the outcome), a disagreement also an `opinion`;
* every object carries the official TLP 2.0 marking definition of its label (AMBER+STRICT included).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from typing import Any

import stix2

from crisis.domain.crisis import CrisisState
from crisis.domain.enums import ActionOutcome, IndicatorKind, Tlp
from crisis.domain.indicators import Indicator
from crisis.interop.export import CrisisExport, ProviderAction, SharedIndicator
from crisis.interop.submissions import Imported, strictest

# The OASIS TLP 2.0 extension and its marking definitions (cti-stix-common-objects, tlp-2.0).
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
_TLP2_IDS = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
_TLP2_CREATED = "2022-10-01T00:00:00.000Z"

# This project's property extension on indicators: the indicator kind, PDQ quality, video-hash reference.
EXTENSION = "extension-definition--ce663441-c019-4264-9e36-bfde1be3d7da"
_EXTENSION_CREATED = "2026-01-01T00:00:00.000Z"
_NAMESPACE = uuid.UUID("8d3c6b1e-2f4a-4e0b-9a7c-5b1d0e6f3a21")
_PRODUCER = "crisis-bus"

_HASH_NAMES = {
    IndicatorKind.MD5: "MD5",
    IndicatorKind.SHA1: "SHA-1",
    IndicatorKind.SHA256: "SHA-256",
    IndicatorKind.SHA512: "SHA-512",
    IndicatorKind.PDQ: "PDQ",
}


class _Indicator(stix2.Indicator):  # type: ignore[misc]  # stix2 ships no type hints
    """An indicator whose pattern comes from `pattern()` alone, which the tests check with the OASIS
    validator for every kind: re-parsing it with the pattern grammar on each export took three quarters of
    the export's time (bench/exports.py)."""

    def _check_object_constraints(self) -> None:
        super(stix2.Indicator, self)._check_object_constraints()


def tlp_marking(tlp: Tlp) -> stix2.MarkingDefinition:
    """The official TLP 2.0 marking definition for `tlp`."""
    return stix2.MarkingDefinition(
        id=_TLP2_IDS[tlp],
        created=_TLP2_CREATED,
        name=f"TLP:{tlp.upper()}",
        extensions={TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": str(tlp)}},
    )


def _derived(kind: str, *parts: str) -> str:
    """A stable STIX id for an object derived from this project's ids: exporting twice gives the same.

    STIX asks for UUIDv4 on domain objects: the name-based digest is laid out as a version-4 UUID.
    """
    digest = uuid.uuid5(_NAMESPACE, chr(0).join(parts)).bytes
    return f"{kind}--{uuid.UUID(bytes=digest, version=4)}"


def _org(name: str) -> str:
    return _derived("identity", "org", name)


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pattern(indicator: Indicator) -> str:
    """The STIX pattern that matches this indicator."""
    kind = indicator.kind
    if kind is IndicatorKind.URL:
        return f"[url:value = {_quoted(indicator.canonical)}]"
    if kind in _HASH_NAMES:
        return f"[file:hashes.{_quoted(_HASH_NAMES[kind])} = {_quoted(indicator.canonical)}]"
    blob = indicator.blob
    if blob is not None:  # tmk, vpdq: the hash file, by reference
        return f"[file:hashes.'SHA-256' = {_quoted(blob.sha256)} AND file:size = {blob.size}]"
    raise ValueError(f"a {kind} indicator has no STIX pattern")


def _extension(indicator: Indicator) -> dict[str, Any]:
    ext: dict[str, Any] = {"extension_type": "property-extension", "kind": str(indicator.kind)}
    if indicator.quality is not None:
        ext["quality"] = indicator.quality
    if indicator.canonicalization:
        ext["canonicalization"] = indicator.canonicalization
    if indicator.value is not None and indicator.value != indicator.canonical:
        ext["value_as_seen"] = indicator.value
    return ext


def _indicator(item: SharedIndicator, report_ref: str, crisis_title: str) -> list[Any]:
    ind = item.indicator
    if ind.kind is IndicatorKind.METADATA:
        content = json.dumps(ind.context.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
        return [
            stix2.Note(
                id=_indicator_ref(item, report_ref),
                created=item.shared_at,
                modified=item.shared_at,
                created_by_ref=_org(item.shared_by),
                abstract="metadata",
                content=content,
                object_refs=[report_ref],
                object_marking_refs=[_TLP2_IDS[item.tlp]],
                revoked=item.retracted,
            )
        ]
    stix_id = _indicator_ref(item, report_ref)
    objects: list[Any] = [
        _Indicator(
            id=stix_id,
            created=item.shared_at,
            modified=item.shared_at,
            valid_from=item.shared_at,
            created_by_ref=_org(item.shared_by),
            name=f"{ind.kind} {ind.canonical}"[:250],
            description=f"Shared by {item.shared_by} in crisis {crisis_title}",
            indicator_types=["malicious-activity"],
            pattern=pattern(ind),
            pattern_type="stix",
            revoked=item.retracted,
            object_marking_refs=[_TLP2_IDS[item.tlp]],
            extensions={EXTENSION: _extension(ind)},
        )
    ]
    for n, (org, at) in enumerate(item.sightings):
        objects.append(
            stix2.Sighting(
                id=_derived("sighting", item.id, str(n)),
                created=at,
                modified=at,
                created_by_ref=_org(org),
                sighting_of_ref=stix_id,
                where_sighted_refs=[_org(org)],
                first_seen=at,
                last_seen=at,
                count=1,
                object_marking_refs=[_TLP2_IDS[item.tlp]],
            )
        )
    return objects


def _indicator_ref(item: SharedIndicator, report_ref: str) -> str:
    """The STIX id the indicator is exported under (a metadata indicator is a note on the report)."""
    if item.indicator.kind is IndicatorKind.METADATA:
        return _derived("note", "metadata", item.id)
    return f"indicator--{item.id}" if _is_uuid4(item.id) else _derived("indicator", item.id)


def _action(action: ProviderAction, target: str, tlp: Tlp) -> list[Any]:
    common = {
        "created": action.at,
        "modified": action.at,
        "created_by_ref": _org(action.org),
        "object_refs": [target],
        "object_marking_refs": [_TLP2_IDS[tlp]],
    }
    objects: list[Any] = [
        stix2.Note(
            id=_derived("note", "action", action.id),
            abstract=str(action.outcome),
            content=action.note or f"{action.org}: {action.outcome}",
            authors=[action.org],
            **common,
        )
    ]
    if action.outcome is ActionOutcome.DISAGREE:
        objects.append(
            stix2.Opinion(
                id=_derived("opinion", action.id),
                opinion="disagree",
                explanation=action.note or None,
                authors=[action.org],
                **common,
            )
        )
    return objects


def _is_uuid4(text: str) -> bool:
    try:
        return uuid.UUID(text).version == 4
    except ValueError:
        return False


def _extension_definition() -> stix2.ExtensionDefinition:
    return stix2.ExtensionDefinition(
        id=EXTENSION,
        created=_EXTENSION_CREATED,
        modified=_EXTENSION_CREATED,
        created_by_ref=_org(_PRODUCER),
        name="crisis-bus indicator",
        description=(
            "The crisis-bus indicator kind (url, md5, sha1, sha256, sha512, pdq, tmk, vpdq), the PDQ quality "
            "(0-100), the URL canonicalisation rules' name and version, and the value as first seen."
        ),
        schema="docs/interop.md (STIX section) in the crisis-bus distribution",
        version="1.0",
        extension_types=["property-extension"],
    )


def bundle(export: CrisisExport) -> stix2.Bundle:
    """The crisis and what the reader may read of it, as one STIX 2.1 bundle."""
    crisis = export.crisis
    report_id = f"report--{crisis.id}" if _is_uuid4(crisis.id) else _derived("report", crisis.id)
    by_id = {item.id: item for item in export.indicators}
    objects: list[Any] = []
    for item in export.indicators:
        objects += _indicator(item, report_id, crisis.title)
    for action in export.actions:
        target = by_id.get(action.indicator_id)
        if target is None:
            continue  # an action on an indicator the reader may not read is not the reader's to see
        target_ref = _indicator_ref(target, report_id)
        objects += _action(action, target_ref, target.tlp)
    orgs = _orgs(crisis, export)
    identities = [
        # `modified` given: stix2 would stamp the export's time, and an unchanged object would look new.
        stix2.Identity(
            id=_org(name),
            name=name,
            identity_class="organization",
            created=crisis.created_at,
            modified=crisis.created_at,
        )
        for name in sorted(orgs)
    ]
    extension = [_extension_definition()] if any(o.type == "indicator" for o in objects) else []
    report = stix2.Report(
        id=report_id,
        created=crisis.created_at,
        modified=crisis.updated_at,
        published=crisis.created_at,
        created_by_ref=_org(crisis.created_by),
        name=crisis.title,
        description=_description(crisis),
        report_types=["threat-report"],
        labels=[f"crisis-status:{crisis.status}", f"crisis-mode:{crisis.mode}"],
        object_refs=[o.id for o in objects] or [_org(crisis.created_by)],
        object_marking_refs=[_TLP2_IDS[crisis.tlp]],
    )
    tlps = {crisis.tlp, *(i.tlp for i in export.indicators)}
    markings = [tlp_marking(t) for t in Tlp if t in tlps]
    return stix2.Bundle(objects=[*markings, *extension, *identities, report, *objects], allow_custom=False)


def _orgs(crisis: CrisisState, export: CrisisExport) -> set[str]:
    orgs = {crisis.created_by, _PRODUCER}
    orgs.update(i.shared_by for i in export.indicators)
    orgs.update(org for i in export.indicators for org, _ in i.sightings)
    readable = {i.id for i in export.indicators}
    orgs.update(a.org for a in export.actions if a.indicator_id in readable)
    return orgs


def _description(crisis: CrisisState) -> str:
    parts: Iterable[str] = (
        crisis.summary,
        f"Status {crisis.status}" + (f", level {crisis.level}" if crisis.level else "") + ".",
        ("Jurisdictions: " + ", ".join(crisis.jurisdictions) + ".") if crisis.jurisdictions else "",
    )
    return " ".join(p for p in parts if p)


# Reading bundles back: the patterns `pattern()` writes, and simple equality patterns from other tools.
_TLP_BY_MARKING = {ref: tlp for tlp, ref in _TLP2_IDS.items()} | {
    stix2.TLP_WHITE.id: Tlp.CLEAR,  # TLP 1.0 marking definitions, as older tools write them
    stix2.TLP_GREEN.id: Tlp.GREEN,
    stix2.TLP_AMBER.id: Tlp.AMBER,
    stix2.TLP_RED.id: Tlp.RED,
}
_KIND_BY_HASH = {
    name.replace("-", ""): kind for kind, name in _HASH_NAMES.items()
}  # MD5, SHA1, SHA256, SHA512, PDQ: 'SHA-256' and SHA256 alike
_HASH_PATH = r"file:hashes\.(?:'(?P<quoted>[A-Za-z0-9-]+)'|(?P<bare>[A-Za-z0-9-]+))"
_ONE = re.compile(rf"(?P<path>{_HASH_PATH}|url:value|file:size)\s*=\s*(?P<value>'(?:[^'\\]|\\.)*'|\d+)")
_AND = re.compile(r"\s+AND\s+")


def _unquoted(text: str) -> str:
    if not text.startswith("'"):
        return text
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _comparisons(text: str) -> dict[str, str] | None:
    """`{path: value}` for one observation of equality comparisons joined by AND; None for anything else."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    found: dict[str, str] = {}
    rest = text[1:-1].strip()
    while rest:
        match = _ONE.match(rest)
        if match is None:
            return None
        hash_name = match.group("quoted") or match.group("bare")
        key = f"hash:{hash_name.upper().replace('-', '')}" if hash_name else match.group("path")
        found[key] = _unquoted(match.group("value"))
        rest = rest[match.end() :]
        joined = _AND.match(rest)
        if joined is None:
            return found if not rest.strip() else None
        rest = rest[joined.end() :]
    return None  # a trailing AND


def _from_pattern(text: str, ext: dict[str, Any]) -> list[dict[str, Any]] | str:
    """Submissions for one indicator's pattern, or why it cannot be read."""
    found = _comparisons(text)
    if found is None:
        return "pattern is not an equality on file hashes or url:value"
    kind = str(ext.get("kind", ""))
    if kind in {IndicatorKind.TMK, IndicatorKind.VPDQ}:
        if "hash:SHA256" not in found or "file:size" not in found:
            return f"a {kind} indicator needs the SHA-256 and size of its hash file"
        return [{"kind": kind, "blob": {"sha256": found["hash:SHA256"], "size": int(found["file:size"])}}]
    items: list[dict[str, Any]] = []
    if "url:value" in found:
        items.append({"kind": "url", "value": ext.get("value_as_seen") or found["url:value"]})
    for key, value in found.items():
        hash_kind = _KIND_BY_HASH.get(key.removeprefix("hash:")) if key.startswith("hash:") else None
        if hash_kind is not None:
            item: dict[str, Any] = {"kind": str(hash_kind), "value": value}
            if hash_kind is IndicatorKind.PDQ and isinstance(ext.get("quality"), int):
                item["quality"] = ext["quality"]
            items.append(item)
        elif key.startswith("hash:"):
            return f"hash algorithm {key[5:21]!r} is not an indicator kind here"
    return items or "pattern names no file hash and no URL"


def read_bundle(document: Any) -> Imported:
    """Indicators from a STIX 2.1 bundle (this project's or another tool's): what a share request takes.

    Revoked indicators and objects other than indicators (and this project's metadata notes) are left out;
    every indicator that cannot be read is named in `skipped` with the reason.
    """
    if not isinstance(document, dict) or document.get("type") != "bundle":
        raise ValueError("not a STIX bundle: no object with type 'bundle'")
    items: list[dict[str, Any]] = []
    skipped: list[str] = []
    labels: list[Tlp | None] = []
    for n, obj in enumerate(document.get("objects") or ()):
        if not isinstance(obj, dict) or obj.get("revoked"):
            continue
        found = _read_object(obj)
        if found is None:
            continue
        if isinstance(found, str):
            skipped.append(f"objects[{n}] ({str(obj.get('id', ''))[:80]}): {found}")
            continue
        items += found
        labels += [_marking_tlp(obj)] * len(found)
    return Imported(items, strictest(labels), skipped)


def _read_object(obj: dict[str, Any]) -> list[dict[str, Any]] | str | None:
    if obj.get("type") == "note" and obj.get("abstract") == "metadata":
        try:
            context = json.loads(str(obj.get("content", "")))
        except ValueError:
            return "a metadata note whose content is not JSON"
        return [{"kind": "metadata", "context": context}]
    if obj.get("type") != "indicator":
        return None
    if obj.get("pattern_type", "stix") != "stix":
        return f"pattern type {str(obj.get('pattern_type'))[:32]!r} is not STIX"
    ext = (obj.get("extensions") or {}).get(EXTENSION) or {}
    return _from_pattern(str(obj.get("pattern", "")), ext if isinstance(ext, dict) else {})


def _marking_tlp(obj: dict[str, Any]) -> Tlp | None:
    return strictest(_TLP_BY_MARKING.get(str(ref)) for ref in obj.get("object_marking_refs") or ())

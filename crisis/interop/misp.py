"""A crisis as a MISP event, and MISP events back into indicators. Pure: JSON in, JSON out.

MISP has attribute types for file hashes and URLs but none for perceptual or video hashes, so:

* md5, sha1, sha256, sha512 and url are attributes of those types (category Payload delivery or
  Network activity, `to_ids` set); a URL as it was seen, hashes lowercase;
* pdq is a `text` attribute; tmk and vpdq are a `file` object with the `sha256` and `size-in-bytes` of
  the hash file; metadata is a `text` attribute holding its JSON;
* every attribute or object carries the machine tag `crisis-bus:kind="<kind>"` (and `crisis-bus:quality` for
  PDQ), so an import recovers the exact kind: a 64-hex text could be a SHA-256 or a PDQ;
* TLP travels as MISP's `tlp:*` tags (TLP 2.0: clear, green, amber, amber+strict, red) on the event
  and on each attribute; distribution is "your organisation only" (0): a MISP instance decides its own
  sharing.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from crisis.domain.enums import IndicatorKind, Tlp
from crisis.interop.export import CrisisExport, SharedIndicator
from crisis.interop.submissions import Imported, tlp_named

KIND_TAG = "crisis-bus:kind"
QUALITY_TAG = "crisis-bus:quality"
_NAMESPACE = uuid.UUID("0f8e2c61-2d0b-4f0e-b4c1-7a1f9d3e5c22")
_PLAIN = {
    IndicatorKind.MD5: ("md5", "Payload delivery"),
    IndicatorKind.SHA1: ("sha1", "Payload delivery"),
    IndicatorKind.SHA256: ("sha256", "Payload delivery"),
    IndicatorKind.SHA512: ("sha512", "Payload delivery"),
    IndicatorKind.URL: ("url", "Network activity"),
}
_BY_MISP_TYPE = {misp_type: kind for kind, (misp_type, _) in _PLAIN.items()}
_MACHINE_TAG = re.compile(r'^([a-z0-9-]+:[a-z0-9-]+)="?([^"]*)"?$')


def _ts(at: datetime) -> str:
    return str(int(at.timestamp()))


def _tags(*names: str) -> list[dict[str, str]]:
    return [{"name": name} for name in names]


def _kind_tags(item: SharedIndicator) -> list[str]:
    names = [f"tlp:{item.tlp}", f'{KIND_TAG}="{item.indicator.kind}"']
    if item.indicator.quality is not None:
        names.append(f'{QUALITY_TAG}="{item.indicator.quality}"')
    return names


def _attribute(item: SharedIndicator, misp_type: str, category: str, value: str) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid5(_NAMESPACE, f"attribute:{item.id}")),
        "type": misp_type,
        "category": category,
        "value": value,
        "to_ids": misp_type != "text" or item.indicator.kind is IndicatorKind.PDQ,
        "timestamp": _ts(item.shared_at),
        "comment": f"shared by {item.shared_by}",
        "deleted": False,
        "disable_correlation": False,
        "distribution": "5",  # inherit the event's
        "Tag": _tags(*_kind_tags(item)),
    }


def _object(item: SharedIndicator) -> dict[str, Any]:
    blob = item.indicator.blob
    assert blob is not None
    tags = _tags(*_kind_tags(item))
    return {
        "uuid": str(uuid.uuid5(_NAMESPACE, f"object:{item.id}")),
        "name": "file",
        "meta-category": "file",
        "description": f"{item.indicator.kind} video hash file, by reference",
        "template_uuid": "688c46fb-5edb-40a3-8273-1af7923e2215",
        "template_version": "24",
        "timestamp": _ts(item.shared_at),
        "comment": f"{item.indicator.kind} shared by {item.shared_by}",
        "distribution": "5",
        "Attribute": [
            {**_attribute(item, "sha256", "Payload delivery", blob.sha256), "object_relation": "sha256"},
            {
                **_attribute(item, "size-in-bytes", "Other", str(blob.size)),
                "uuid": str(uuid.uuid5(_NAMESPACE, f"size:{item.id}")),
                "object_relation": "size-in-bytes",
                "to_ids": False,
                "Tag": tags,
            },
        ],
    }


def event(export: CrisisExport) -> dict[str, Any]:
    """The MISP event JSON (`{"Event": {...}}`) of one crisis, with what the reader may read."""
    crisis = export.crisis
    attributes: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    for item in export.indicators:
        if item.retracted:
            continue  # MISP has no revocation on an attribute that a consumer would honour: leave it out
        ind = item.indicator
        if ind.kind in _PLAIN:
            misp_type, category = _PLAIN[ind.kind]
            # A URL as seen (the import canonicalises it again); hashes in their lowercase form.
            attributes.append(_attribute(item, misp_type, category, ind.value or ind.canonical))
        elif ind.blob is not None:
            objects.append(_object(item))
        elif ind.kind is IndicatorKind.PDQ:
            attributes.append(_attribute(item, "text", "Payload delivery", ind.canonical))
        else:
            context = json.dumps(ind.context.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
            attributes.append(_attribute(item, "text", "Other", context))
    return {
        "Event": {
            "uuid": crisis.id if _is_uuid(crisis.id) else str(uuid.uuid5(_NAMESPACE, crisis.id)),
            "info": crisis.title,
            "date": crisis.created_at.astimezone(UTC).date().isoformat(),
            "timestamp": _ts(crisis.updated_at),
            "threat_level_id": "1",
            "analysis": "2" if crisis.status in {"concluded", "closed"} else "1",
            "distribution": "0",
            "published": False,
            "Orgc": {"name": crisis.created_by},
            "Tag": _tags(f"tlp:{crisis.tlp}", f'crisis-bus:mode="{crisis.mode}"'),
            "Attribute": attributes,
            "Object": objects,
        }
    }


def _tag_values(raw: Any) -> dict[str, str]:
    values: dict[str, str] = {}
    for tag in raw or ():
        name = str(tag.get("name", "")) if isinstance(tag, Mapping) else ""
        match = _MACHINE_TAG.match(name)
        if match:
            values[match.group(1)] = match.group(2)
        elif name.startswith("tlp:"):
            values["tlp"] = name[4:]
    return values


def _tlp(values: Mapping[str, str]) -> Tlp | None:
    return tlp_named(values.get("tlp", ""))


def read_event(document: Mapping[str, Any]) -> Imported:
    """Indicators from a MISP event (or a feed's event file): what a share request takes."""
    body = document.get("Event", document)
    if not isinstance(body, Mapping):
        raise ValueError("not a MISP event: no Event object")
    items: list[dict[str, Any]] = []
    skipped: list[str] = []
    for where, attribute in _attributes(body):
        item = _item(attribute)
        if item is None:
            skipped.append(f"{where}: MISP type {attribute.get('type')!r} is not an indicator kind here")
        else:
            items.append(item)
    for n, obj in enumerate(body.get("Object") or ()):
        item = _blob_item(obj)
        if item is not None:
            items.append(item)
        else:
            for where, attribute in _attributes(obj, f"Object[{n}]"):
                found = _item(attribute)
                if found is None:
                    skipped.append(
                        f"{where}: MISP type {attribute.get('type')!r} is not an indicator kind here"
                    )
                else:
                    items.append(found)
    return Imported(items, _tlp(_tag_values(body.get("Tag"))), skipped)


def _attributes(
    body: Mapping[str, Any], prefix: str = "Attribute"
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for n, attribute in enumerate(body.get("Attribute") or ()):
        if isinstance(attribute, Mapping) and not attribute.get("deleted"):
            yield f"{prefix}[{n}]", attribute


def _item(attribute: Mapping[str, Any]) -> dict[str, Any] | None:
    tags = _tag_values(attribute.get("Tag"))
    value = str(attribute.get("value", ""))
    kind = tags.get(KIND_TAG)
    if kind == IndicatorKind.PDQ:
        item: dict[str, Any] = {"kind": "pdq", "value": value}
        if QUALITY_TAG in tags and tags[QUALITY_TAG].isdigit():
            item["quality"] = int(tags[QUALITY_TAG])
        return item
    if kind == IndicatorKind.METADATA:
        return {"kind": "metadata", "context": json.loads(value)}
    found = _BY_MISP_TYPE.get(str(attribute.get("type", "")))
    return {"kind": str(found), "value": value} if found is not None else None


def _blob_item(obj: Any) -> dict[str, Any] | None:
    if not isinstance(obj, Mapping):
        return None
    relations = {a.get("object_relation"): a for a in obj.get("Attribute") or () if isinstance(a, Mapping)}
    kind = _tag_values((relations.get("sha256") or {}).get("Tag")).get(KIND_TAG)
    if kind not in {IndicatorKind.TMK, IndicatorKind.VPDQ} or "size-in-bytes" not in relations:
        return None
    size = str(relations["size-in-bytes"].get("value", ""))
    blob = {"sha256": str(relations["sha256"].get("value", "")), "size": int(size) if size.isdigit() else 0}
    return {"kind": kind, "blob": blob}


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True

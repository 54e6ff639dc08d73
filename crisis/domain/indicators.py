"""Indicators: what clients submit, the per-kind rules, and the normalised form carried in events."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from operator import itemgetter
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from crisis.domain.enums import IndicatorKind
from crisis.domain.urls import URL_CANONICALIZATION, UrlError, canonicalize_url

HEX_LENGTHS: dict[IndicatorKind, int] = {
    IndicatorKind.MD5: 32,
    IndicatorKind.SHA1: 40,
    IndicatorKind.SHA256: 64,
    IndicatorKind.SHA512: 128,
    IndicatorKind.PDQ: 64,
}
BLOB_KINDS = frozenset({IndicatorKind.TMK, IndicatorKind.VPDQ})
VALUE_KINDS = frozenset({IndicatorKind.URL, *HEX_LENGTHS})
_HEX = frozenset("0123456789abcdef")

ShortText = Annotated[str, Field(min_length=1, max_length=100)]
Label = Annotated[str, Field(min_length=1, max_length=64)]
LanguageTag = Annotated[
    str, Field(max_length=35, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
]  # BCP-47-like


def _error(kind: str, message: str) -> PydanticCustomError:
    # The message goes in as context: user text with braces must not be read as a template.
    return PydanticCustomError(kind, "{message}", {"message": message})


class IndicatorContext(BaseModel):
    """Where and how the content was seen; deliberately no free-form personal data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: ShortText | None = None
    content_type: ShortText | None = None
    language: LanguageTag | None = None
    first_seen: AwareDatetime | None = None
    labels: list[Label] = Field(default_factory=list, max_length=20)

    @field_validator("first_seen")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    @property
    def is_empty(self) -> bool:
        """True when no field is set."""
        return not self.model_dump(exclude_defaults=True)


class BlobRef(BaseModel):
    """A video hash file (tmk, vpdq) by reference: its sha256 and size in bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: int = Field(ge=1)

    @field_validator("sha256", mode="before")
    @classmethod
    def _lowercase(cls, value: object) -> object:
        # Stored lowercase like every other hash, whichever case the tool printed.
        return value.lower() if isinstance(value, str) else value


class IndicatorIn(BaseModel):
    """An indicator as submitted; per-kind rules are field validators so each error names its field."""

    model_config = ConfigDict(extra="forbid")

    # Declared first: the validators below read the kind from info.data.
    kind: IndicatorKind
    value: str | None = Field(default=None, validate_default=True)
    quality: int | None = Field(default=None, ge=0, le=100, validate_default=True)
    blob: BlobRef | None = Field(default=None, validate_default=True)
    context: IndicatorContext = Field(default_factory=IndicatorContext, validate_default=True)

    @field_validator("value")
    @classmethod
    def _value(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind is None:
            return value  # kind already failed; its own error says so
        if value is None:
            if kind in VALUE_KINDS:
                raise _error("value_required", f"a {kind} indicator needs a value")
            return None
        if kind not in VALUE_KINDS:
            raise _error("value_forbidden", f"a {kind} indicator takes no value")
        if kind is IndicatorKind.URL:
            _check_url(value)
            return value
        return _check_hex(value, kind)

    @field_validator("quality")
    @classmethod
    def _quality(cls, quality: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("kind")
        if quality is not None and kind is not None and kind is not IndicatorKind.PDQ:
            raise _error("quality_forbidden", f"quality applies to pdq only, not to {kind}")
        return quality

    @field_validator("blob")
    @classmethod
    def _blob(cls, blob: BlobRef | None, info: ValidationInfo) -> BlobRef | None:
        kind = info.data.get("kind")
        if kind is None:
            return blob
        if blob is None and kind in BLOB_KINDS:
            raise _error("blob_required", f"a {kind} indicator needs a blob (sha256 and size)")
        if blob is not None and kind not in BLOB_KINDS:
            raise _error("blob_forbidden", f"blob applies to tmk and vpdq only, not to {kind}")
        return blob

    @field_validator("context")
    @classmethod
    def _context(cls, context: IndicatorContext, info: ValidationInfo) -> IndicatorContext:
        if info.data.get("kind") is IndicatorKind.METADATA and context.is_empty:
            raise _error("context_required", "a metadata indicator needs at least one context field")
        return context


def _check_url(value: str) -> None:
    try:
        canonicalize_url(value)
    except UrlError as exc:
        raise _error("url_invalid", str(exc)) from None


def _check_hex(value: str, kind: IndicatorKind) -> str:
    """The value in lowercase: hashing tools print either case, and one hash must have one spelling."""
    expected = HEX_LENGTHS[kind]
    lower = value.lower()
    if not set(lower) <= _HEX:
        raise _error("hex_invalid", f"a {kind} value must be hexadecimal digits (0-9, a-f or A-F)")
    if len(value) != expected:
        raise _error("hex_length", f"a {kind} value must be {expected} hex characters, got {len(value)}")
    return lower


class Indicator(BaseModel):
    """The normalised indicator: the payload of `indicator.shared`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: IndicatorKind
    value: str | None = Field(default=None, description="As submitted; for url the raw URL.")
    canonical: str = Field(min_length=1, description="The form that identifies a repeat within a crisis.")
    canonicalization: str | None = Field(default=None, description="Name and version of the URL rules.")
    quality: int | None = Field(default=None, ge=0, le=100)
    blob: BlobRef | None = None
    context: IndicatorContext = Field(default_factory=IndicatorContext)

    @property
    def identity(self) -> tuple[IndicatorKind, str]:
        """The key that recognises a repeat of the same indicator within a crisis."""
        return (self.kind, self.canonical)


def normalise(item: IndicatorIn) -> Indicator:
    """Turn a validated submission into its normalised form."""
    is_url = item.kind is IndicatorKind.URL
    return Indicator(
        kind=item.kind,
        value=item.value,
        canonical=_canonical(item),
        canonicalization=URL_CANONICALIZATION if is_url else None,
        quality=item.quality,
        blob=item.blob,
        context=item.context,
    )


def _canonical(item: IndicatorIn) -> str:
    if item.kind is IndicatorKind.URL:
        return canonicalize_url(item.value or "")
    if item.blob is not None:
        return f"{item.blob.sha256}:{item.blob.size}"
    if item.kind is IndicatorKind.METADATA:
        return _metadata_canonical(item.context)
    return item.value or ""


def _metadata_canonical(context: IndicatorContext) -> str:
    data: dict[str, Any] = context.model_dump(mode="json", exclude_defaults=True)
    if "labels" in data:
        data["labels"] = sorted(set(data["labels"]))  # label order and repeats do not make a new indicator
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class ItemError(BaseModel):
    """Why one item of a batch was refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int
    field: str = Field(description='Dotted path of the field, e.g. "context.language"; "" for the item.')
    message: str


def validate_batch(items: list[object]) -> list[Indicator | ItemError]:
    """Validate each item on its own; results keep the order of the input."""
    return [_validate_item(index, raw) for index, raw in enumerate(items)]


def _validate_item(index: int, raw: object) -> Indicator | ItemError:
    if not isinstance(raw, dict):
        message = f"item must be a JSON object, not {type(raw).__name__}"
        return ItemError(index=index, field="", message=message)
    try:
        return normalise(IndicatorIn.model_validate(raw))
    except ValidationError as exc:
        errors = exc.errors()
        first, rest = errors[0], errors[1:]
        message = first["msg"]
        if rest:
            message += "; also " + "; ".join(f"{_dotted(e['loc'])}: {e['msg']}" for e in rest)
        return ItemError(index=index, field=_dotted(first["loc"]), message=message)


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


_PLAIN_HEX = {str(kind): re.compile(f"[0-9a-f]{{{length}}}") for kind, length in HEX_LENGTHS.items()}
_NO_CONTEXT = IndicatorContext().model_dump(mode="json")
# The context of every bare hash as validated from _NO_CONTEXT (frozen; shared, never changed in place).
NO_CONTEXT = IndicatorContext.model_validate(_NO_CONTEXT)


def plain_hash(raw: object) -> dict[str, Any] | None:
    """The normalised data of a bare, valid `{kind, value}` hash, or None for anything else.

    Most indicators in a large batch are exactly this. Their normalised form is the input itself, and
    the pydantic round trip (IndicatorIn, then Indicator, then a dump) cost ~15 % of the ingest budget.
    test_fast_path.py checks this returns what validate_batch would, and the fold validates every event.
    """
    if type(raw) is not dict or len(raw) != 2:
        return None
    kind, value = raw.get("kind"), raw.get("value")
    if type(kind) is not str or type(value) is not str:
        return None
    pattern = _PLAIN_HEX.get(kind)
    if pattern is None or not pattern.fullmatch(value):
        return None
    return {
        "kind": kind,
        "value": value,
        "canonical": value,
        "canonicalization": None,
        "quality": None,
        "blob": None,
        "context": dict(_NO_CONTEXT),
    }


def is_plain_hash(data: dict[str, Any]) -> bool:
    """Whether `data` holds the normalised form of a bare hash exactly as plain_hash writes it (what else
    it holds aside): the fold builds such an event's data without pydantic (crisis.domain.events)."""
    kind, value, canonical, context = (
        data.get("kind"),
        data.get("value"),
        data.get("canonical"),
        data.get("context"),
    )
    if (
        type(kind) is not str
        or type(value) is not str
        or type(canonical) is not str
        or type(context) is not dict
    ):
        return False
    pattern = _PLAIN_HEX.get(kind)
    return (
        pattern is not None
        and canonical == value
        and data.get("canonicalization") is None
        and data.get("quality") is None
        and data.get("blob") is None
        and context == _NO_CONTEXT
        and pattern.fullmatch(value) is not None
    )


def check_items(items: list[Any]) -> tuple[list[tuple[int, dict[str, Any]]], list[ItemError]]:
    """Each item on its own: (index, normalised data) for the valid ones, and an error for each other."""
    valid: list[tuple[int, dict[str, Any]]] = []
    slow: list[tuple[int, object]] = []
    for index, raw in enumerate(items):
        data = plain_hash(raw)
        if data is None:
            slow.append((index, raw))
        else:
            valid.append((index, data))
    errors = []
    for (index, _), checked in zip(slow, validate_batch([raw for _, raw in slow]), strict=True):
        if isinstance(checked, Indicator):
            valid.append((index, checked.model_dump(mode="json")))
        else:
            errors.append(checked.model_copy(update={"index": index}))
    valid.sort(key=itemgetter(0))
    return valid, errors

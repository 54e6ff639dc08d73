"""Plain hash lists, as hashing tools and hash-sharing pipelines write them, into indicator submissions.

Accepted per line (blank lines and `#` comments skipped; upper or lower case; stored lowercase):

* a bare hash: `d41d8cd98f00b204e9800998ecf8427e`
* GNU coreutils: `<hash>  <file>` or `<hash> *<file>` (`sha256sum`, `md5sum`, ...)
* BSD / `shasum --tag`: `SHA256 (<file>) = <hash>`; the label names the kind

The kind comes from the label, or from the length when that is unambiguous: 32 hex is md5, 40 sha1,
128 sha512. 64 hex is a SHA-256 or a PDQ hash and is never guessed: the caller names the kind (`kind=`), or
the line is refused. Errors name the line number and the reason, never the line's content.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from crisis.domain.enums import IndicatorKind

_BY_LENGTH = {32: IndicatorKind.MD5, 40: IndicatorKind.SHA1, 128: IndicatorKind.SHA512}
_LENGTHS = {
    IndicatorKind.MD5: 32,
    IndicatorKind.SHA1: 40,
    IndicatorKind.SHA256: 64,
    IndicatorKind.SHA512: 128,
    IndicatorKind.PDQ: 64,
}
_LABELS = {
    "MD5": IndicatorKind.MD5,
    "SHA1": IndicatorKind.SHA1,
    "SHA256": IndicatorKind.SHA256,
    "SHA512": IndicatorKind.SHA512,
    "PDQ": IndicatorKind.PDQ,
}
_BSD = re.compile(r"^([A-Za-z0-9-]+) \(.*\) = ([0-9A-Fa-f]+)$")
_GNU = re.compile(r"^\\?([0-9A-Fa-f]+)(?:\s+\*?.*)?$")
MAX_LINE = 4096


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    message: str


@dataclass
class HashList:
    """Submissions (`{"kind", "value"}`) in file order, and the lines refused."""

    items: list[dict[str, str]] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


def read_hash_list(lines: Iterable[str], kind: IndicatorKind | None = None) -> HashList:
    """Parse a hash list; `kind` fixes the kind of every line (needed for SHA-256 or PDQ lists)."""
    if kind is not None and kind not in _LENGTHS:
        raise ValueError(f"a hash list holds md5, sha1, sha256, sha512 or pdq hashes, not {kind}")
    out = HashList()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) > MAX_LINE:
            out.errors.append(LineError(number, f"longer than {MAX_LINE} characters"))
            continue
        found = _parse(line, kind)
        if isinstance(found, str):
            out.errors.append(LineError(number, found))
        else:
            out.items.append({"kind": str(found[0]), "value": found[1]})
    return out


def _parse(line: str, fixed: IndicatorKind | None) -> tuple[IndicatorKind, str] | str:
    labelled = _BSD.match(line)
    if labelled:
        label, value = labelled.group(1).upper().replace("-", ""), labelled.group(2)
        if label not in _LABELS:
            return f"unknown hash label {label[:16]!r}"
        kind: IndicatorKind | None = _LABELS[label]
        if fixed is not None and kind is not fixed:
            return f"labelled {kind}, but the list is {fixed}"
    else:
        plain = _GNU.match(line)
        if not plain:
            return "not a hash (hex digits, optionally followed by a file name)"
        value, kind = plain.group(1), fixed
    value = value.lower()
    if kind is None:
        kind = _BY_LENGTH.get(len(value))
        if kind is None:
            if len(value) == 64:
                return "64 hex digits is a sha256 or a pdq hash: name the kind of the list"
            return f"{len(value)} hex digits is no known hash length (32, 40, 64, 128)"
    if len(value) != _LENGTHS[kind]:
        return f"a {kind} hash has {_LENGTHS[kind]} hex digits, this one {len(value)}"
    return kind, value

"""URL canonicalisation: one spelling per resource, so the same URL shared twice is recognised as a repeat.

Rules "crisis-url/2" (docs/indicators.md): http/https only; lowercase scheme and host; IDN host to punycode;
default port and fragment dropped; escapes of unreserved characters decoded (`%7E` is `~`), every other escape
uppercased, disallowed characters percent-encoded as UTF-8, so the result is ASCII; then dot segments removed
(RFC 3986 5.2.4); empty path is "/"; path and query case kept; the query parameters named in
TRACKING_PARAMETERS dropped, the others kept in their order.

crisis-url/1 was the same without the decoding of unreserved escapes and without dropping tracking
parameters. Events keep the canonical form and the name of the rules that made it, so old events still fold.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

URL_CANONICALIZATION = "crisis-url/2"
# Part of crisis-url/2: any change to this list is a new version of the rules. Names match exactly (case
# included) after unreserved escapes are decoded. Each only says who clicked where, never which content.
_TRACKING = {
    "Urchin (UTM)": ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "utm_id"),
    "Google": ("gclid", "dclid", "gbraid", "wbraid", "_ga", "_gl"),
    "Meta": ("fbclid",),
    "Instagram": ("igshid",),
    "Microsoft Ads": ("msclkid",),
    "X": ("twclid",),
    "TikTok": ("ttclid",),
    "Yandex": ("yclid",),
    "Mailchimp": ("mc_cid", "mc_eid"),
}
TRACKING_PARAMETERS = frozenset(name for names in _TRACKING.values() for name in names)
MAX_URL_LENGTH = 8192

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?![0-9])")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The stdlib idna codec splits on these four dots, so we do too.
_DOTS = re.compile("[.\u3002\uff0e\uff61]")
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_PORT = re.compile(r"[0-9]{1,5}")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# RFC 3986 unreserved + sub-delims + ":" "@" "/" may stay literal in a path; a query may also hold "?".
_PATH_SAFE = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_QUERY_SAFE = _PATH_SAFE | {"?"}


class UrlError(ValueError):
    """A URL that cannot be canonicalised; the message says why."""


def canonicalize_url(raw: str) -> str:
    """Return the crisis-url/2 canonical form of `raw`, or raise UrlError."""
    text = _clean(raw)
    scheme, rest = _split_scheme(text)
    authority, tail = _split_authority(rest[2:])
    tail = tail.partition("#")[0]  # the fragment never reaches the server
    path, question, query = tail.partition("?")
    result = f"{scheme}://{_authority(authority, scheme)}{_path(path)}"
    if question:
        result += _query(_encode(query, _QUERY_SAFE))
    if len(result) > MAX_URL_LENGTH:
        # Otherwise canonicalising the result again would fail: the form must be a fixed point.
        raise UrlError(f"canonical URL is longer than {MAX_URL_LENGTH} characters")
    return result


def _clean(raw: str) -> str:
    if len(raw) > MAX_URL_LENGTH:
        raise UrlError(f"URL is longer than {MAX_URL_LENGTH} characters")
    text = raw.strip()
    if not text:
        raise UrlError("URL is empty")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise UrlError("URL contains control characters or lone surrogates")
    return text


def _split_scheme(text: str) -> tuple[str, str]:
    match = _SCHEME.match(text)
    # In "localhost:8080" or "example.com:x" the host poses as a scheme; a port or a dot gives it away.
    if match is None or "." in match.group(1):
        raise UrlError("URL has no scheme; it must start with http:// or https://")
    scheme = match.group(1).lower()
    if scheme not in _DEFAULT_PORTS:
        raise UrlError(f"scheme {scheme!r} is not supported; only http and https are")
    rest = text[match.end() :]
    if not rest.startswith("//"):
        raise UrlError(f"{scheme} URL must have '//' and a host after the scheme")
    return scheme, rest


def _split_authority(text: str) -> tuple[str, str]:
    """Split after "//" into the authority and the rest, which starts at the first "/", "?" or "#"."""
    end = next((i for i, ch in enumerate(text) if ch in "/?#"), len(text))
    return text[:end], text[end:]


def _authority(authority: str, scheme: str) -> str:
    if "@" in authority:
        raise UrlError("URL must not contain user information (user:password@): it is personal data")
    if authority.startswith("["):
        inner, bracket, after = authority[1:].partition("]")
        if not bracket:
            raise UrlError("IPv6 host is missing its closing ']'")
        if after and not after.startswith(":"):
            raise UrlError("unexpected text after the IPv6 host")
        return _ipv6(inner) + _port(after[1:], scheme)
    host, _, port = authority.partition(":")
    return _hostname(host) + _port(port, scheme)


def _ipv6(inner: str) -> str:
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        raise UrlError(f"invalid IPv6 host [{inner}]") from None
    return f"[{inner.lower()}]"


def _hostname(host: str) -> str:
    if not host:
        raise UrlError("URL has no host")
    return ".".join(_label(label, host) for label in _DOTS.split(host))


def _label(label: str, host: str) -> str:
    try:
        ascii_label = label.lower() if label.isascii() else label.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlError(f"invalid host {host!r}") from None
    if not _LABEL.fullmatch(ascii_label):
        raise UrlError(f"invalid host {host!r}: bad or empty label {label!r}")
    return ascii_label


def _port(digits: str, scheme: str) -> str:
    """Return ":port", or "" when it is absent, empty or the scheme's default."""
    if not digits:
        return ""
    if not _PORT.fullmatch(digits) or not 0 < int(digits) <= 65535:
        raise UrlError(f"invalid port {digits!r}")
    number = int(digits)
    return "" if number == _DEFAULT_PORTS[scheme] else f":{number}"


def _path(path: str) -> str:
    return _remove_dot_segments(_encode(path, _PATH_SAFE)) or "/"


def _query(query: str) -> str:
    """ "?query" without tracking parameters; "" when only tracking parameters were there."""
    if not query:
        return "?"  # a bare "?" is kept as sent: some servers tell "/x?" from "/x"
    kept = [part for part in query.split("&") if part.partition("=")[0] not in TRACKING_PARAMETERS]
    return "?" + "&".join(kept) if kept else ""


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, for the absolute paths that follow an authority."""
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    # A trailing "." or ".." names a directory, so the result keeps its final slash.
    if path.endswith(("/.", "/..")):
        output.append("")
    return "".join("/" + segment for segment in output)


def _encode(text: str, safe: frozenset[str]) -> str:
    """Decode escaped unreserved characters, uppercase the other escapes, encode everything not in `safe`.

    A stray '%' becomes %25. An escape of a reserved character ("/", "?", "&", "=", ...) is kept: decoding
    it would change what the URL means.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        if _ESCAPE.match(text, i):
            char = chr(int(text[i + 1 : i + 3], 16))
            out.append(char if char in _UNRESERVED else text[i : i + 3].upper())
            i += 3
            continue
        ch = text[i]
        out.append(ch if ch in safe else "".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        i += 1
    return "".join(out)

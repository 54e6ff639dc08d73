"""Which URLs a webhook may point at: http(s) only, and no private or loopback target unless allowed.

A webhook makes this server send requests on an organisation's behalf; pointed at an internal address it
would reach services the organisation cannot (server-side request forgery). The check runs at registration
on the URL as written and again before each delivery on the addresses the host resolves to, so a name
that later resolves inward (DNS rebinding) is refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

LOCAL_NAMES = ("localhost", "localhost.localdomain")


def url_problem(url: str, *, allow_http: bool, allow_private: bool) -> str | None:
    """Why `url` may not be a webhook target, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "a webhook URL must be http(s)"
    if parts.scheme == "http" and not allow_http:
        return "a webhook URL must use https"
    if not parts.hostname:
        return "a webhook URL must name a host"
    if parts.username or parts.password:
        return "a webhook URL must not carry credentials"
    if not allow_private and _is_private_name(parts.hostname):
        return "a webhook URL must not point at a private, loopback or link-local address"
    return None


def _is_private_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        return is_private_address(host)
    except ValueError:
        return False  # a name: its addresses are checked before each delivery


def is_private_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not ip.is_global or ip.is_multicast


async def resolves_inward(host: str, port: int) -> bool:
    """True when any address `host` resolves to is not a public one."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return any(is_private_address(str(info[4][0])) for info in infos)

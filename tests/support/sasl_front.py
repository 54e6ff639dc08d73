"""A SASL-terminating TLS listener in front of a broker without authentication, with users given by a test.

The embedded broker cannot show a successful SASL login: it offers SCRAM only, refuses the request that
would create a user before a login, and keeps no user across a restart. This listener authenticates
clients itself, the way a SASL-terminating proxy in front of brokers does: it passes ApiVersions to the
broker and its answer back, answers SaslHandshake (v0, v1) and SaslAuthenticate (v0 to v2) itself with
SCRAM-SHA-512, SCRAM-SHA-256 (the server side of RFC 5802, with RFC 7677's hash) or PLAIN (RFC 4616), and
after a successful login relays bytes both ways. A failed login is answered with SASL_AUTHENTICATION_FAILED
(58) and the connection closed, as Apache Kafka does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import secrets
import ssl
import struct
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from crisis.broker import LOOPBACK
from tests.support.tls_front import pipe

MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
HASHES = {"SCRAM-SHA-512": "sha512", "SCRAM-SHA-256": "sha256"}
ITERATIONS = 4096  # the minimum RFC 7677 asks for

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED = 33, 34, 58


class LoginFailed(Exception):
    """The client's credentials or messages do not make a login; the text goes back as error_message."""


@dataclass
class ScramServer:
    """The server side of one SCRAM exchange (RFC 5802) with SHA-256 (RFC 7677) or SHA-512."""

    hash_name: str
    users: Mapping[str, str]
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    nonce: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(18)).decode())
    iterations: int = ITERATIONS
    user: str = ""
    _auth_first: str = ""
    _gs2: str = ""
    _salted: bytes = b""

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self.hash_name).digest()

    def first(self, client_first: bytes) -> bytes:
        """Answer client-first-message with server-first-message (salt, iterations, combined nonce)."""
        text = client_first.decode()
        gs2, _, bare = text.partition(",,")
        # No channel binding over this listener: "n" (client does not support it) or "y" (thinks we do not).
        if gs2 not in ("n", "y") or not bare:
            raise LoginFailed("unsupported GS2 header or malformed client-first-message")
        attributes = dict(part.split("=", 1) for part in bare.split(",") if "=" in part)
        if "n" not in attributes or "r" not in attributes:
            raise LoginFailed("client-first-message lacks the user name or the nonce")
        self.user = attributes["n"].replace("=2C", ",").replace("=3D", "=")
        # An unknown user goes through the whole exchange and fails at the proof, like a wrong password.
        password = self.users.get(self.user, secrets.token_hex(16))
        self._salted = hashlib.pbkdf2_hmac(self.hash_name, password.encode(), self.salt, self.iterations)
        self.nonce = attributes["r"] + self.nonce
        server_first = f"r={self.nonce},s={base64.b64encode(self.salt).decode()},i={self.iterations}"
        self._auth_first = f"{bare},{server_first}"
        self._gs2 = gs2 + ",,"
        return server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        """Verify client-final-message's proof and answer server-final-message (the server signature)."""
        text = client_final.decode()
        without_proof, _, proof = text.rpartition(",p=")
        attributes = dict(part.split("=", 1) for part in without_proof.split(",") if "=" in part)
        if attributes.get("c") != base64.b64encode(self._gs2.encode()).decode():
            raise LoginFailed("channel binding does not match the GS2 header")
        if attributes.get("r") != self.nonce:
            raise LoginFailed("nonce does not match")
        auth_message = f"{self._auth_first},{without_proof}".encode()
        client_key_hash = getattr(hashlib, self.hash_name)
        stored_key = client_key_hash(self._hmac(self._salted, b"Client Key")).digest()
        signature = self._hmac(stored_key, auth_message)
        try:
            given = base64.b64decode(proof, validate=True)
        except ValueError as exc:
            raise LoginFailed("malformed proof") from exc
        recovered = bytes(a ^ b for a, b in zip(given, signature, strict=False))
        if len(given) != len(signature) or not hmac.compare_digest(
            client_key_hash(recovered).digest(), stored_key
        ):
            raise LoginFailed("Authentication failed: invalid credentials")
        server_signature = self._hmac(self._hmac(self._salted, b"Server Key"), auth_message)
        return b"v=" + base64.b64encode(server_signature)


def check_plain(message: bytes, users: Mapping[str, str]) -> str:
    """The user a PLAIN message (authzid NUL authcid NUL password, RFC 4616) logs in as, or LoginFailed."""
    parts = message.split(b"\0")
    if len(parts) != 3:
        raise LoginFailed("malformed PLAIN message")
    authzid, user, password = (part.decode() for part in parts)
    expected = users.get(user)
    if authzid not in ("", user) or expected is None or not hmac.compare_digest(password, expected):
        raise LoginFailed("Authentication failed: Invalid username or password")
    return user


class Login:
    """One connection's SASL state: the mechanism chosen at the handshake, then its exchange."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = users
        self.mechanism: str | None = None
        self.scram: ScramServer | None = None
        self.user: str | None = None

    @property
    def done(self) -> bool:
        return self.user is not None

    def step(self, token: bytes) -> bytes:
        """The answer to one authentication token; sets `user` once the client is authenticated."""
        try:
            return self._step(token)
        except (UnicodeError, ValueError) as exc:
            raise LoginFailed("malformed authentication message") from exc

    def _step(self, token: bytes) -> bytes:
        assert self.mechanism is not None
        if self.mechanism == "PLAIN":
            self.user = check_plain(token, self.users)
            return b""
        if self.scram is None:
            self.scram = ScramServer(HASHES[self.mechanism], self.users)
            return self.scram.first(token)
        answer = self.scram.final(token)
        self.user = self.scram.user
        return answer


# Kafka wire format, just what the three requests above need.


def _int16(value: int) -> bytes:
    return struct.pack(">h", value)


def _string(value: str | None) -> bytes:
    if value is None:
        return _int16(-1)
    data = value.encode()
    return _int16(len(data)) + data


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _skip_tagged_fields(data: bytes, at: int) -> int:
    count, at = _read_varint(data, at)
    for _ in range(count):
        _, at = _read_varint(data, at)
        size, at = _read_varint(data, at)
        at += size
    return at


@dataclass
class Request:
    api_key: int
    api_version: int
    correlation_id: int
    body: bytes

    @property
    def flexible(self) -> bool:
        """Whether this request (and its answer) uses the tagged-field header: only the flexible versions."""
        return (self.api_key, self.api_version) in {(SASL_AUTHENTICATE, 2)} or (
            self.api_key == API_VERSIONS and self.api_version >= 3
        )


def parse_request(frame: bytes) -> Request:
    """Split a request frame (without its size) into its header v1/v2 fields and the body."""
    api_key, api_version, correlation_id, client_id_size = struct.unpack_from(">hhih", frame)
    at = 10 + max(client_id_size, 0)
    request = Request(api_key, api_version, correlation_id, b"")
    if request.flexible:
        at = _skip_tagged_fields(frame, at)
    request.body = frame[at:]
    return request


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def handshake_response(request: Request, mechanism: str) -> bytes:
    error = 0 if mechanism in MECHANISMS else UNSUPPORTED_SASL_MECHANISM
    offered = struct.pack(">i", len(MECHANISMS)) + b"".join(_string(m) for m in MECHANISMS)
    return _frame(struct.pack(">i", request.correlation_id) + _int16(error) + offered)


def authenticate_token(request: Request) -> bytes:
    if request.flexible:
        size, at = _read_varint(request.body, 0)
        return request.body[at : at + size - 1]
    (size,) = struct.unpack_from(">i", request.body)
    return request.body[4 : 4 + max(size, 0)]


def authenticate_response(request: Request, error: int, message: str | None, token: bytes) -> bytes:
    """SaslAuthenticate's answer in the request's version (v1 and v2 add a session lifetime of 0: none)."""
    correlation = struct.pack(">i", request.correlation_id)
    if request.flexible:
        text = b"\0" if message is None else _varint(len(message.encode()) + 1) + message.encode()
        body = _int16(error) + text + _varint(len(token) + 1) + token + struct.pack(">q", 0) + b"\0"
        return _frame(correlation + b"\0" + body)
    body = _int16(error) + _string(message) + struct.pack(">i", len(token)) + token
    if request.api_version >= 1:
        body += struct.pack(">q", 0)
    return _frame(correlation + body)


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


async def _authenticate(
    users: Mapping[str, str],
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    up_r: asyncio.StreamReader,
    up_w: asyncio.StreamWriter,
) -> Login | None:
    """Run the client's login: the login once it succeeded, None when the connection must be closed."""
    login = Login(users)
    raw_tokens = False  # after a v0 handshake the tokens travel in bare size-prefixed frames
    while not login.done:
        frame = await _read_frame(client_r)
        if raw_tokens:
            try:
                client_w.write(_frame(login.step(frame)))
            except LoginFailed:
                return None
            await client_w.drain()
            continue
        request = parse_request(frame)
        if request.api_key == API_VERSIONS:
            up_w.write(_frame(frame))
            await up_w.drain()
            client_w.write(_frame(await _read_frame(up_r)))
        elif request.api_key == SASL_HANDSHAKE and login.mechanism is None:
            (size,) = struct.unpack_from(">h", request.body)
            mechanism = request.body[2 : 2 + size].decode()
            client_w.write(handshake_response(request, mechanism))
            if mechanism not in MECHANISMS:
                await client_w.drain()
                return None
            login.mechanism = mechanism
            raw_tokens = request.api_version == 0
        elif request.api_key == SASL_AUTHENTICATE and login.mechanism is None:
            client_w.write(authenticate_response(request, ILLEGAL_SASL_STATE, "no SaslHandshake yet", b""))
            await client_w.drain()
            return None
        elif request.api_key == SASL_AUTHENTICATE:
            try:
                answer = login.step(authenticate_token(request))
            except LoginFailed as failed:
                client_w.write(authenticate_response(request, SASL_AUTHENTICATION_FAILED, str(failed), b""))
                await client_w.drain()
                return None
            client_w.write(authenticate_response(request, 0, None, answer))
        else:
            # Anything else before a login is refused by closing, as Apache Kafka does.
            return None
        await client_w.drain()
    return login


@dataclass
class SaslFront:
    logins: list[tuple[str, str]] = field(default_factory=list)
    """(user, mechanism) of every successful login, in order."""


@asynccontextmanager
async def sasl_front(
    context: ssl.SSLContext, port: int, upstream_port: int, users: Mapping[str, str]
) -> AsyncIterator[SaslFront]:
    """Accept TLS on LOOPBACK:port, require a SASL login by one of `users` (name: password), then relay."""
    front = SaslFront()
    tasks: set[asyncio.Task[None]] = set()

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(LOOPBACK, upstream_port)
        except OSError:
            client_w.close()
            return
        try:
            login = await _authenticate(users, client_r, client_w, up_r, up_w)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, struct.error, UnicodeError):
            login = None
        if login is None or login.user is None or login.mechanism is None:
            client_w.close()
            up_w.close()
            return
        front.logins.append((login.user, login.mechanism))
        with contextlib.suppress(Exception):
            await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))

    def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(serve(r, w))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_client, LOOPBACK, port, ssl=context)
    try:
        yield front
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

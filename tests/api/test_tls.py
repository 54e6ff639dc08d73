"""The API and the gateway serve TLS themselves when given a certificate (else a proxy in front does)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trustme
from pydantic import ValidationError
from websockets.asyncio.client import connect

from crisis.config import Settings
from crisis.runtime import stack


async def test_https_and_wss_with_the_processes_own_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_and_cert_chain_pem.write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    settings = Settings(
        bus_url="memory://",
        keys_file=tmp_path / "keys.json",
        orgs_file=tmp_path / "orgs.json",
        webhooks_file=tmp_path / "webhooks.db",
        api_port=0,
        gateway_port=0,
        api_tls_cert_file=cert,
        api_tls_key_file=key,
        gateway_tls_cert_file=cert,
        gateway_tls_key_file=key,
    )
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    async with stack(settings) as running:
        assert running.api_url.startswith("https://") and running.ws_url.startswith("wss://")
        async with httpx.AsyncClient(verify=trusted) as http:
            assert (await http.get(f"{running.api_url}/livez")).status_code == 200
            gateway = running.ws_url.replace("wss://", "https://").replace("/v1/stream", "/livez")
            assert (await http.get(gateway)).status_code == 200
        async with connect(running.ws_url, ssl=trusted, origin=None) as ws:
            assert ws.protocol.state.name == "OPEN"
        async with httpx.AsyncClient() as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.get(f"{running.api_url}/livez")


def test_a_certificate_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="CRISIS_GATEWAY_TLS_CERT_FILE and CRISIS_GATEWAY_TLS_KEY_FILE"):
        Settings(gateway_tls_cert_file=tmp_path / "cert.pem")

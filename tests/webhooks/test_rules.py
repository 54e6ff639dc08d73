"""Pure rules: signatures a Standard Webhooks verifier accepts, target URLs, and who an endpoint serves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from crisis.domain.enums import EventType, Mode, Role, Tlp
from crisis.domain.envelope import Envelope
from crisis.domain.webhooks import Endpoint, may_see_delivery, wants
from crisis.webhooks.signing import headers, new_secret
from crisis.webhooks.targets import url_problem

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_secret()
    body = b'{"type":"indicator.shared","data":{"value":"\xc3\xa9"}}'
    now = int(datetime.now(UTC).timestamp())
    sent = headers(secret, "evt-1", now, body)
    assert secret.startswith("whsec_") and sent["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, sent) == {"type": "indicator.shared", "data": {"value": "é"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, sent)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", sent)


@pytest.mark.parametrize(
    ("url", "http", "private", "expected"),
    [
        ("https://hooks.example.org/in", False, False, None),
        ("http://hooks.example.org/in", True, False, None),
        ("http://hooks.example.org/in", False, False, "https"),
        ("ftp://hooks.example.org/in", True, True, "http(s)"),
        ("https://127.0.0.1:9000/in", False, False, "private"),
        ("https://localhost/in", False, False, "private"),
        ("https://[::1]/in", False, False, "private"),
        ("https://10.1.2.3/in", False, False, "private"),
        ("https://169.254.169.254/latest", False, False, "private"),
        ("https://127.0.0.1:9000/in", False, True, None),
        ("https://user:pw@hooks.example.org/", False, False, "credentials"),
        ("https:///nohost", False, False, "host"),
    ],
)
def test_target_urls(url: str, http: bool, private: bool, expected: str | None) -> None:
    problem = url_problem(url, allow_http=http, allow_private=private)
    assert (problem is None) if expected is None else (problem is not None and expected in problem)


def _endpoint(org: str = "vidshare", role: Role = Role.PROVIDER, **kw: object) -> Endpoint:
    values: dict[str, object] = {
        "id": "wh_1",
        "org": org,
        "key_id": "k1",
        "role": role,
        "url": "https://hooks.example.org/",
        "types": (EventType.INDICATOR_SHARED,),
        "created_at": T0,
        **kw,
    }
    return Endpoint.model_validate(values)


def _event(tlp: Tlp = Tlp.GREEN, recipients: tuple[str, ...] = (), **kw: object) -> Envelope:
    values: dict[str, object] = {
        "source": "/orgs/bka/keys/k9",
        "type": EventType.INDICATOR_SHARED,
        "time": T0 + timedelta(seconds=1),
        "subject": "c1",
        "tlp": tlp,
        "mode": Mode.LIVE,
        "tlprecipients": recipients,
        "data": {},
        **kw,
    }
    return Envelope.model_validate(values)


def test_an_endpoint_gets_only_what_its_organisation_could_read_on_the_stream() -> None:
    assert wants(_endpoint(), _event())
    assert wants(_endpoint(), _event(Tlp.RED, ("vidshare",)))
    assert not wants(_endpoint(), _event(Tlp.RED, ("tubeco",)))
    assert not wants(_endpoint(role=Role.OBSERVER), _event(Tlp.CLEAR))
    assert not wants(_endpoint(exercise_only=True, modes=(Mode.LIVE, Mode.EXERCISE)), _event())


def test_an_endpoint_gets_the_types_and_modes_it_asked_for_written_after_it_registered() -> None:
    assert not wants(_endpoint(), _event(type=EventType.ACTION_REPORTED))
    assert not wants(_endpoint(), _event(mode=Mode.EXERCISE))
    assert wants(_endpoint(modes=(Mode.EXERCISE,)), _event(mode=Mode.EXERCISE))
    assert not wants(_endpoint(), _event(time=T0 - timedelta(seconds=1)))


def test_the_hub_sees_deliveries_only_of_events_it_may_read() -> None:
    hub = _endpoint(org="hub", role=Role.COORDINATOR).principal
    assert may_see_delivery(hub, "vidshare", _event())
    assert not may_see_delivery(hub, "vidshare", _event(Tlp.RED, ("vidshare",)))
    other = _endpoint(org="tubeco").principal
    assert not may_see_delivery(other, "vidshare", _event())
    assert may_see_delivery(_endpoint().principal, "vidshare", _event(Tlp.RED, ("vidshare",)))


def test_plain_http_targets_are_a_development_convenience() -> None:
    from crisis.config import Settings

    assert Settings().webhook_http_allowed
    assert not Settings(webhook_allow_http=False).webhook_http_allowed
    production = {
        "environment": "production",
        "kafka_bootstrap": "k1:9092",
        "kafka_replication": 3,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_username": "crisis-api",
        "kafka_sasl_password": "secret",
    }
    assert not Settings(**production).webhook_http_allowed
    assert Settings(**production, webhook_allow_http=True).webhook_http_allowed
    assert not Settings().webhook_allow_private


async def test_a_name_that_resolves_to_loopback_is_refused_at_delivery() -> None:
    from crisis.webhooks.targets import resolves_inward

    assert await resolves_inward("localhost", 80)

"""KEYFOB_TRUSTED_PROXIES: X-Forwarded-For is believed only from a listed proxy."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from keyfob.audit.events import client_address
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core.models import Throttle
from tests.conftest import password_step

PROXIES = ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]


def address(remote: str, forwarded: str | None = None) -> str | None:
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return client_address(RequestFactory().get("/", REMOTE_ADDR=remote, **extra))


@pytest.fixture
def proxies(settings) -> None:  # type: ignore[no-untyped-def]
    settings.KEYFOB_TRUSTED_PROXIES = PROXIES


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        # No header, or a peer that is not a listed proxy: the peer.
        ("10.1.2.3", None, "10.1.2.3"),
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),
        # From a listed proxy: the right-most address that is not a proxy of ours.
        ("10.1.2.3", "198.51.100.7", "198.51.100.7"),
        ("192.0.2.1", "198.51.100.7", "198.51.100.7"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # the left part is the client's
        ("10.1.2.3", "198.51.100.7, 10.9.9.9", "198.51.100.7"),  # through two of our proxies
        ("10.1.2.3", "198.51.100.7,192.0.2.1", "198.51.100.7"),
        ("10.1.2.3", "10.5.5.5, 10.6.6.6", "10.5.5.5"),  # all ours: the left-most
        ("2001:db8::1", "2001:db8::2, 2a00:1450::1", "2a00:1450::1"),
        ("10.1.2.3", " 198.51.100.7 ", "198.51.100.7"),
        # A malformed header is ignored: the proxy's own address.
        ("10.1.2.3", "not an address", "10.1.2.3"),
        ("10.1.2.3", "198.51.100.7, ", "10.1.2.3"),
        ("10.1.2.3", "198.51.100.7:4711", "10.1.2.3"),
        ("10.1.2.3", "unknown, 198.51.100.7", "10.1.2.3"),
        ("10.1.2.3", "", "10.1.2.3"),
        ("10.1.2.3", "1" * 5000, "10.1.2.3"),
        # A malformed peer is unknown whatever the header says.
        ("", "198.51.100.7", None),
        ("garbage", "198.51.100.7", None),
    ],
)
def test_forwarded_for(proxies: None, remote: str, forwarded: str | None, expected: str) -> None:
    assert address(remote, forwarded) == expected


def test_without_trusted_proxies_the_header_is_ignored(settings) -> None:  # type: ignore[no-untyped-def]
    settings.KEYFOB_TRUSTED_PROXIES = []
    assert address("127.0.0.1", "198.51.100.7") == "127.0.0.1"


@pytest.mark.django_db
def test_throttling_and_activity_see_the_client_behind_the_proxy(
    proxies: None,
    user,  # type: ignore[no-untyped-def]
) -> None:
    client = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    password_step(client, password="not the password")
    event = SecurityEvent.objects.get(kind=EventKind.PASSWORD_WRONG)
    assert event.address == "198.51.100.7"
    assert Throttle.objects.filter(scope="address", key="198.51.100.7").exists()
    assert not Throttle.objects.filter(scope="address", key="10.0.0.2").exists()

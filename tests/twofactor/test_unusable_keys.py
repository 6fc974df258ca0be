"""Issue 22: adding a key whose public key cannot be used. The registration's COSE key (in
the authenticator data, which "none" attestation does not sign) is whatever the browser
sends. A CBOR array gave an error page (IndexError), and an RSA modulus of 0, an
elliptic-curve point (0, 0) or off the curve, an unknown curve or a short coordinate were
stored, turning 2FA on with a key that can never sign. Each is now a clear refusal on the
"Add a security key" page, nothing stored; the keys a real authenticator makes still go in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.test import Client

from keyfob.twofactor import flows
from keyfob.twofactor.cose import UnusableKey, check_public_key
from keyfob.twofactor.models import RecoveryCode, SecurityKey
from tests.conftest import make_user, password_step
from tests.twofactor.keys import created, key_client
from tests.webauthn_soft import SoftAuthenticator

pytestmark = pytest.mark.django_db

ADD = "/account/security/keys/add/"
REFUSED = "The answer from your security key could not be checked"


def _p256(leading_zero: bool = False) -> tuple[bytes, bytes]:
    """A P-256 public point's coordinates (x with a leading zero byte when asked)."""
    while True:
        numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
        x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
        if not leading_zero or x[0] == 0:
            return x, y


def _ec2(x: bytes, y: bytes, crv: Any = 1, alg: Any = -7) -> bytes:
    return cbor2.dumps({1: 2, 3: alg, -1: crv, -2: x, -3: y})


def _rsa(n: int, e: int = 65537) -> bytes:
    size = max(1, (n.bit_length() + 7) // 8)
    return cbor2.dumps({1: 3, 3: -257, -1: n.to_bytes(size, "big"), -2: e.to_bytes(3, "big")})


def _off_curve() -> bytes:
    x, y = _p256()
    return _ec2(x, (int.from_bytes(y, "big") ^ 1).to_bytes(32, "big"))


def _short_x() -> bytes:
    x, y = _p256(leading_zero=True)  # the same point, its x written without its zero byte
    return _ec2(x[1:], y)


def _rsa_key(bits: int) -> bytes:
    numbers = rsa.generate_private_key(65537, bits).public_key().public_numbers()
    return _rsa(numbers.n)


UNUSABLE: dict[str, Callable[[], bytes]] = {
    "CBOR array": lambda: cbor2.dumps([2, -7]),
    "CBOR array of a key's length": lambda: cbor2.dumps([2, -7, 1, *_p256()]),
    "CBOR integer": lambda: cbor2.dumps(7),
    "RSA n=0": lambda: _rsa(0),
    "RSA n=1": lambda: _rsa(1),
    "RSA of 1024 bits": lambda: _rsa_key(1024),
    "RSA e=0": lambda: cbor2.dumps({1: 3, 3: -257, -1: b"\xff" * 256, -2: b"\x00"}),
    "EC point (0, 0)": lambda: _ec2(bytes(32), bytes(32)),
    "EC point off the curve": _off_curve,
    "unknown curve": lambda: _ec2(*_p256(), crv=99),
    "P-384 curve for ES256": lambda: _ec2(*_p256(), crv=2),
    "curve as text": lambda: _ec2(*_p256(), crv="P-256"),
    "short x coordinate": _short_x,
    "coordinates as integers": lambda: cbor2.dumps(
        {1: 2, 3: -7, -1: 1, -2: int.from_bytes(_p256()[0], "big"), -3: 1}
    ),
    "EC2 key with RS256": lambda: _ec2(*_p256(), alg=-257),
    "Ed25519 x of 31 bytes": lambda: cbor2.dumps({1: 1, 3: -8, -1: 6, -2: bytes(31)}),
    "no key type": lambda: cbor2.dumps({3: -7, -1: 1, -2: _p256()[0], -3: _p256()[1]}),
}


@pytest.fixture
def carol(frozen_time: float) -> Client:
    """Carol, without 2FA, signed in with a fresh confirmation, on "Add a security key"."""
    make_user("carol@example.com", phone="+33123456789")
    client = key_client()
    assert password_step(client, "carol@example.com")["Location"] == "/account/security/"
    return client


@pytest.mark.parametrize("name", list(UNUSABLE), ids=list(UNUSABLE))
def test_an_unusable_public_key_is_refused_clearly(carol: Client, name: str) -> None:
    cose = UNUSABLE[name]()
    answer = created(carol, SoftAuthenticator(), cose_key=cose)
    response = carol.post(ADD, {"name": "Bad", "credential": answer})
    assert response.status_code == 200
    assert REFUSED in response.content.decode()
    assert not SecurityKey.objects.exists() and not RecoveryCode.objects.exists()
    user = response.wsgi_request.user
    assert not flows.has_2fa(user)  # type: ignore[arg-type]
    # The page's own check says the same of the bytes alone.
    with pytest.raises(UnusableKey):
        check_public_key(cose)


@pytest.mark.parametrize(
    "make",
    [
        lambda: _ec2(*_p256()),
        lambda: _ec2(*_p256(leading_zero=True)),  # a zero byte kept: full length
        lambda: cbor2.dumps(
            {
                1: 1,
                3: -8,
                -1: 6,
                -2: ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw(),
            }
        ),
        lambda: _rsa_key(2048),
    ],
    ids=["P-256", "P-256 x with a leading zero", "Ed25519", "RSA 2048"],
)
def test_the_keys_authenticators_make_are_added(carol: Client, make: Callable[[], bytes]) -> None:
    cose = make()
    answer = created(carol, SoftAuthenticator(), cose_key=cose)
    response = carol.post(ADD, {"name": "Good", "credential": answer})
    assert response.status_code == 302, response.content.decode()
    assert bytes(SecurityKey.objects.get().public_key) == cose

"""A security key's public key (COSE_Key, RFC 9052 §7 and RFC 9053), checked before it is
stored: the key must be one of the kinds Keyfob asks for and a key that can verify a
signature at all.

The ``webauthn`` library reads a registration's COSE key only as far as it needs to store it;
it takes an RSA modulus of 0, an elliptic-curve point that is not on the curve, or a short
coordinate, and 2FA would then turn on with a key that can never sign. Here each is loaded
with ``cryptography``, which refuses what is not a public key.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from webauthn.helpers import parse_cbor
from webauthn.helpers.exceptions import InvalidCBORData

# COSE labels and values (IANA "COSE Key Common Parameters", "COSE Algorithms",
# "COSE Elliptic Curves").
KTY, ALG, CRV, X, Y, N, E = 1, 3, -1, -2, -3, -1, -2
OKP, EC2, RSA = 1, 2, 3
ES256, EDDSA, RS256 = -7, -8, -257
P256, ED25519 = 1, 6
# The algorithms Keyfob's registration options offer (the library's default), by key type.
OFFERED = {EC2: ES256, OKP: EDDSA, RSA: RS256}
# RSA keys shorter than this are refused: no authenticator makes one, and they are weak.
MIN_RSA_BITS = 2048


class UnusableKey(ValueError):
    """The public key cannot be stored: malformed, of a kind not offered, or not a key."""


def _bytes(key: dict[Any, Any], label: int, size: int | None = None) -> bytes:
    value = key.get(label)
    if not isinstance(value, bytes) or not value:
        raise UnusableKey(f"parameter {label} is not a byte string")
    if size is not None and len(value) != size:
        # RFC 9053 §7.1.1: coordinates keep their leading zeros; a short one is malformed.
        raise UnusableKey(f"parameter {label} is {len(value)} bytes, not {size}")
    return value


def check_public_key(cose: bytes) -> None:
    """Raise :class:`UnusableKey` unless ``cose`` is an ES256 (P-256), EdDSA (Ed25519) or
    RS256 public key that ``cryptography`` loads: a CBOR map, its algorithm the one offered
    for its key type, its curve known, its coordinates full length and its point on the
    curve, its RSA modulus at least 2048 bits."""
    try:
        key = parse_cbor(cose)
    except InvalidCBORData:
        raise UnusableKey("not CBOR") from None
    if not isinstance(key, dict):
        raise UnusableKey("not a CBOR map")
    kty = key.get(KTY)
    if type(kty) is not int or kty not in OFFERED:
        raise UnusableKey(f"key type {kty!r} not offered")
    alg = key.get(ALG)
    if type(alg) is not int or alg != OFFERED[kty]:
        raise UnusableKey(f"algorithm {alg!r} not offered for key type {kty}")
    try:
        if kty == EC2:
            if key.get(CRV) != P256 or type(key.get(CRV)) is not int:
                raise UnusableKey(f"curve {key.get(CRV)!r} not offered")
            x = int.from_bytes(_bytes(key, X, 32), "big")
            y = int.from_bytes(_bytes(key, Y, 32), "big")
            ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        elif kty == OKP:
            if key.get(CRV) != ED25519 or type(key.get(CRV)) is not int:
                raise UnusableKey(f"curve {key.get(CRV)!r} not offered")
            ed25519.Ed25519PublicKey.from_public_bytes(_bytes(key, X, 32))
        else:
            n = int.from_bytes(_bytes(key, N), "big")
            e = int.from_bytes(_bytes(key, E), "big")
            if n.bit_length() < MIN_RSA_BITS:
                raise UnusableKey(f"RSA modulus of {n.bit_length()} bits")
            rsa.RSAPublicNumbers(e, n).public_key()
    except UnusableKey:
        raise
    except (ValueError, TypeError, OverflowError) as exc:  # cryptography's refusal
        raise UnusableKey(str(exc)) from None

"""A software authenticator for tests: an independent WebAuthn client written from the spec
(W3C WebAuthn Level 3, §6.1 authenticator data, §6.5.4 "none" attestation, §7 client data),
with a P-256 key from `cryptography` and CBOR from `cbor2`, not from the `webauthn` library
the server uses to check what it makes.

It plays both the browser and the authenticator: from the options a server sends (the dict
`webauthn.options_to_json` gives, parsed) and the page's origin, ``create`` and ``get``
return the JSON a browser's ``PublicKeyCredential.toJSON()`` gives, ready to post as the
``credential`` field. Knobs make the bad ceremonies a server must refuse: another origin
(pass it), another RP id (``rp_id=``), the other ceremony's client data type
(``client_data_type=``), a signature over other bytes (``bad_signature=True``), a counter
set explicitly (``sign_count=``), no user presence or verification.

Not product code: no attestation but "none", one algorithm (ES256), no extensions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

# Authenticator data flags (WebAuthn §6.1).
UP = 0x01  # user present
UV = 0x04  # user verified
BE = 0x08  # backup eligible
BS = 0x10  # backed up
AT = 0x40  # attested credential data included
ES256 = -7  # COSE algorithm: ECDSA with SHA-256 on P-256


def b64url(data: bytes) -> str:
    """Unpadded base64url, as WebAuthn's JSON forms write bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CeremonyError(Exception):
    """What a browser would reject the ceremony with; ``name`` is the DOMException's name
    (NotAllowedError: no credential for this request; InvalidStateError: the authenticator
    already holds an excluded credential)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


@dataclass
class SoftCredential:
    """One credential the authenticator holds."""

    id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    resident: bool
    sign_count: int
    backup_eligible: bool
    backed_up: bool

    @property
    def id_b64(self) -> str:
        """The credential id as the server stores it (base64url)."""
        return b64url(self.id)

    def cose_public_key(self) -> bytes:
        """The public key as a COSE_Key (RFC 9053 §7.1.1: EC2, P-256, ES256)."""
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: ES256,  # alg
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


class SoftAuthenticator:
    """A roaming (``transports=("usb",)``) or platform (``("internal",)``) authenticator
    holding any number of credentials, with a zero AAGUID, as "none" attestation gives."""

    def __init__(self, *, transports: Sequence[str] = ("usb",), aaguid: bytes = bytes(16)) -> None:
        self.transports = list(transports)
        self.aaguid = aaguid
        self.credentials: list[SoftCredential] = []

    @property
    def attachment(self) -> str:
        return "platform" if "internal" in self.transports else "cross-platform"

    # -- registration ------------------------------------------------------------------

    def create(
        self,
        options: Mapping[str, Any] | str,
        origin: str,
        *,
        user_verified: bool = True,
        resident: bool = False,
        backup_eligible: bool = False,
        backed_up: bool = False,
        sign_count: int = 0,
        user_present: bool = True,
        rp_id: str | None = None,
        client_data_type: str = "webauthn.create",
        credential_id_length: int = 32,
        cose_key: bytes | None = None,
    ) -> dict[str, Any]:
        """Make a credential for ``options`` (creation options) at ``origin``; return the
        registration JSON (``toJSON()`` of the browser's PublicKeyCredential).

        ``rp_id`` replaces the options' RP id in the authenticator data (a wrong RP id hash);
        ``client_data_type`` replaces "webauthn.create"; ``credential_id_length`` is the new
        credential id's length in bytes (WebAuthn allows at most 1023); ``cose_key`` replaces
        the credential's public key in the authenticator data (any bytes). Raises CeremonyError
        ("InvalidStateError") when the options exclude a credential this authenticator holds,
        as a browser does.
        """
        options = _parsed(options)
        rp_id = rp_id or options["rp"].get("id") or _host(origin)
        excluded = {b64url_decode(c["id"]) for c in options.get("excludeCredentials", [])}
        if any(c.id in excluded and c.rp_id == rp_id for c in self.credentials):
            raise CeremonyError("InvalidStateError", "this authenticator holds an excluded key")
        credential = SoftCredential(
            id=secrets.token_bytes(credential_id_length),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp_id,
            user_handle=b64url_decode(options["user"]["id"]),
            resident=resident,
            sign_count=sign_count,
            backup_eligible=backup_eligible,
            backed_up=backed_up,
        )
        self.credentials.append(credential)
        flags = _flags(user_present, user_verified, backup_eligible, backed_up) | AT
        attested = (
            self.aaguid
            + struct.pack(">H", len(credential.id))
            + credential.id
            + (credential.cose_public_key() if cose_key is None else cose_key)
        )
        auth_data = _auth_data(rp_id, flags, sign_count) + attested
        client_data = _client_data(client_data_type, options["challenge"], origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        spki = credential.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {
            "id": credential.id_b64,
            "rawId": credential.id_b64,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": self.transports,
                "authenticatorData": b64url(auth_data),
                "publicKey": b64url(spki),
                "publicKeyAlgorithm": ES256,
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": self.attachment,
        }

    # -- authentication ----------------------------------------------------------------

    def get(
        self,
        options: Mapping[str, Any] | str,
        origin: str,
        *,
        user_verified: bool = True,
        sign_count: int | None = None,
        credential_id: str | None = None,
        user_present: bool = True,
        rp_id: str | None = None,
        client_data_type: str = "webauthn.get",
        bad_signature: bool = False,
    ) -> dict[str, Any]:
        """Sign ``options`` (request options) at ``origin`` with one of this authenticator's
        credentials; return the assertion JSON (``toJSON()``).

        The credential is ``credential_id`` (base64url) if given, else the first one the
        options allow, else (empty allow list: a passkey sign-in) the newest resident one
        for the RP id. Its counter goes up by one, or is set to ``sign_count`` (0 reports
        "no counter"; a value at or below the last is what a cloned key sends). The user
        handle is there for a resident credential only. ``bad_signature`` signs other bytes.
        Raises CeremonyError ("NotAllowedError") when no credential fits.
        """
        options = _parsed(options)
        asked_rp_id = options.get("rpId") or _host(origin)
        credential = self._pick(options, asked_rp_id, credential_id)
        credential.sign_count = credential.sign_count + 1 if sign_count is None else sign_count
        flags = _flags(
            user_present, user_verified, credential.backup_eligible, credential.backed_up
        )
        auth_data = _auth_data(rp_id or asked_rp_id, flags, credential.sign_count)
        client_data = _client_data(client_data_type, options["challenge"], origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        if bad_signature:
            signed += b"not what was asked"
        signature = credential.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": credential.id_b64,
            "rawId": credential.id_b64,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(credential.user_handle) if credential.resident else None,
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": self.attachment,
        }

    def _pick(
        self, options: Mapping[str, Any], rp_id: str, credential_id: str | None
    ) -> SoftCredential:
        mine = [c for c in self.credentials if c.rp_id == rp_id]
        if credential_id is not None:
            found = [c for c in mine if c.id_b64 == credential_id]
        elif options.get("allowCredentials"):
            allowed = [b64url_decode(c["id"]) for c in options["allowCredentials"]]
            found = [c for c in mine if c.id in allowed]
        else:
            found = [c for c in reversed(mine) if c.resident]
        if not found:
            raise CeremonyError("NotAllowedError", f"no credential for {rp_id} fits the request")
        return found[0]


def _parsed(options: Mapping[str, Any] | str) -> Mapping[str, Any]:
    # Options may come as the JSON text `options_to_json` gives, or parsed; a
    # `{"publicKey": …}` wrapper is taken off.
    parsed: Mapping[str, Any] = json.loads(options) if isinstance(options, str) else options
    wrapped: Mapping[str, Any] = parsed.get("publicKey", parsed)
    return wrapped


def _host(origin: str) -> str:
    return urlsplit(origin).hostname or ""


def _flags(user_present: bool, user_verified: bool, eligible: bool, backed_up: bool) -> int:
    return (
        (UP if user_present else 0)
        | (UV if user_verified else 0)
        | (BE if eligible else 0)
        | (BS if backed_up else 0)
    )


def _auth_data(rp_id: str, flags: int, sign_count: int) -> bytes:
    return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", sign_count)


def _client_data(kind: str, challenge: str, origin: str) -> bytes:
    # The member order and compact form of a browser's clientDataJSON (WebAuthn §5.8.1.2).
    return json.dumps(
        {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False},
        separators=(",", ":"),
    ).encode()

"""Independent clients of what Keyfob makes: oathtool for codes, zbarimg for QR images,
Debian's Chromium for pages, and Chromium's virtual authenticator for security keys and
passkeys (tests/webauthn_soft.py is the one without a browser)."""

from __future__ import annotations

import base64
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import require_tool
from tests.webauthn_soft import b64url, b64url_decode

# Headless and quiet: no background traffic to hosts this machine cannot reach.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def oathtool_totp(b32_secret: str, at: float | None = None) -> str:
    """The TOTP code of base32 ``b32_secret`` at ``at`` (default now), computed by oathtool."""
    when = int(time.time() if at is None else at)
    return subprocess.run(
        [require_tool("oathtool"), "--totp", "-b", f"--now=@{when}", b32_secret],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()


def decode_qr(png: Path) -> str:
    """What an independent reader (zbarimg) finds in a QR image."""
    out = subprocess.run(
        [require_tool("zbarimg"), "--quiet", "--raw", str(png)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@dataclass
class VirtualAuthenticator:
    """A security key or passkey in a Playwright page: Chromium's virtual authenticator,
    driven through the DevTools protocol's WebAuthn domain (experimental; names as in
    devtools-protocol's pdl/domains/WebAuthn.pdl). It answers navigator.credentials in that
    page (its tab) without a dialog, a touch counted as given (automaticPresenceSimulation).

    Credentials are the protocol's ``Credential`` dicts: ``credentialId``, ``privateKey``
    (PKCS#8) and ``userHandle`` in standard base64, ``rpId``, ``isResidentCredential``,
    ``signCount``, ``backupEligibility``, ``backupState``, ``userName``…
    """

    session: Any  # playwright.sync_api.CDPSession
    authenticator_id: str

    @classmethod
    def add(
        cls,
        page: Any,
        *,
        resident_key: bool,
        user_verification: bool,
        is_user_verified: bool = True,
        transport: str = "usb",
        backup_eligible: bool = False,
        backed_up: bool = False,
    ) -> VirtualAuthenticator:
        """Plug a CTAP2 authenticator into ``page``'s tab. ``resident_key``: it can keep
        discoverable credentials (passkeys); ``user_verification``: it has a PIN or a
        fingerprint, which ``is_user_verified`` says succeeds; ``transport`` "usb" (a key,
        cross-platform) or "internal" (this device's, platform); ``backup_eligible`` and
        ``backed_up``: the BE and BS flags of the credentials it makes (a synced passkey)."""
        session = page.context.new_cdp_session(page)
        session.send("WebAuthn.enable", {"enableUI": False})
        added = session.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": transport,
                    "hasResidentKey": resident_key,
                    "hasUserVerification": user_verification,
                    "isUserVerified": is_user_verified,
                    "automaticPresenceSimulation": True,
                    "defaultBackupEligibility": backup_eligible,
                    "defaultBackupState": backed_up,
                }
            },
        )
        return cls(session, added["authenticatorId"])

    def _send(self, method: str, **params: Any) -> Any:
        return self.session.send(method, {"authenticatorId": self.authenticator_id, **params})

    def credentials(self) -> list[dict[str, Any]]:
        """The credentials it holds (WebAuthn.getCredentials)."""
        return list(self._send("WebAuthn.getCredentials")["credentials"])

    def credential_ids(self) -> list[str]:
        """The ids of its credentials in base64url, as a server stores them."""
        return [cdp_to_b64url(c["credentialId"]) for c in self.credentials()]

    def set_user_verified(self, verified: bool) -> None:
        """Whether its user verification (PIN, fingerprint) succeeds from now on."""
        self._send("WebAuthn.setUserVerified", isUserVerified=verified)

    def remove_credential(self, credential_id: str) -> None:
        """Forget one credential; ``credential_id`` in base64url or standard base64."""
        self._send("WebAuthn.removeCredential", credentialId=b64url_to_cdp(credential_id))

    def add_credential(self, credential: dict[str, Any]) -> None:
        """Store ``credential`` (a dict as ``credentials()`` gives; ``rpId`` needed). A test
        puts one back with a lower ``signCount`` to act as a cloned key."""
        self._send("WebAuthn.addCredential", credential=credential)

    def set_response_override(
        self, *, bogus_signature: bool = False, bad_uv: bool = False, bad_up: bool = False
    ) -> None:
        """Make its next answers wrong: a zeroed signature, the UV or the UP flag cleared
        (each stays until set again; all False restores honest answers)."""
        self._send(
            "WebAuthn.setResponseOverrideBits",
            isBogusSignature=bogus_signature,
            isBadUV=bad_uv,
            isBadUP=bad_up,
        )

    def remove(self) -> None:
        """Unplug it (its credentials go with it) and close the protocol session."""
        self._send("WebAuthn.removeVirtualAuthenticator")
        self.session.detach()


def cdp_to_b64url(value: str) -> str:
    """The protocol's standard base64 as the unpadded base64url WebAuthn's JSON uses."""
    return b64url(base64.b64decode(value))


def b64url_to_cdp(value: str) -> str:
    """Base64url (or standard base64) as the protocol's padded standard base64."""
    return base64.b64encode(b64url_decode(value)).decode("ascii")

"""The software authenticator (tests/webauthn_soft.py) against the `webauthn` library itself:
what it makes passes the library's checks, and each of its knobs makes the library refuse.
No Django, no mocks: the real library, the real crypto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import decode_credential_public_key
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidBackupFlags,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AttestationFormat,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from tests.webauthn_soft import CeremonyError, SoftAuthenticator, b64url, b64url_decode

RP_ID = "localhost"
ORIGIN = "http://localhost:8000"
USER_ID = b"\x01" * 32


def registration_options(**extra: Any) -> tuple[dict[str, Any], bytes]:
    """Creation options as a server sends them (parsed JSON), and their challenge."""
    options = generate_registration_options(
        rp_id=RP_ID, rp_name="Keyfob", user_name="alice@example.com", user_id=USER_ID, **extra
    )
    return json.loads(options_to_json(options)), options.challenge


def authentication_options(*allowed: bytes) -> tuple[dict[str, Any], bytes]:
    """Request options (parsed JSON) allowing ``allowed`` (none: a passkey sign-in)."""
    options = generate_authentication_options(
        rp_id=RP_ID, allow_credentials=[PublicKeyCredentialDescriptor(id=i) for i in allowed]
    )
    return json.loads(options_to_json(options)), options.challenge


def register(soft: SoftAuthenticator, **knobs: Any) -> VerifiedRegistration:
    options, challenge = registration_options()
    return verify_registration_response(
        credential=soft.create(options, ORIGIN, **knobs),
        expected_challenge=challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
    )


def test_registration_passes_the_librarys_checks() -> None:
    """A registration is "none" attestation, zero AAGUID, an ES256 COSE key, counter 0, UV
    set; its JSON has the fields of a browser's toJSON(), for the id the authenticator keeps."""
    soft = SoftAuthenticator()
    options, challenge = registration_options()
    credential = soft.create(options, ORIGIN)
    verified = verify_registration_response(
        credential=json.dumps(credential),  # as posted in the form's `credential` field
        expected_challenge=challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        require_user_verification=True,
    )
    assert verified.fmt == AttestationFormat.NONE
    assert verified.aaguid == "00000000-0000-0000-0000-000000000000"
    assert verified.sign_count == 0
    assert verified.user_verified is True
    assert verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE
    assert verified.credential_backed_up is False
    assert b64url(verified.credential_id) == credential["id"] == soft.credentials[0].id_b64
    key = decode_credential_public_key(verified.credential_public_key)
    assert key.alg == COSEAlgorithmIdentifier.ECDSA_SHA_256
    assert set(credential["response"]) >= {"clientDataJSON", "attestationObject", "transports"}
    assert credential["response"]["transports"] == ["usb"]
    assert credential["authenticatorAttachment"] == "cross-platform"
    assert credential["clientExtensionResults"] == {}


@pytest.mark.parametrize(
    ("knobs", "uv", "device_type", "backed_up", "count"),
    [
        ({"user_verified": False}, False, CredentialDeviceType.SINGLE_DEVICE, False, 0),
        ({"backup_eligible": True}, True, CredentialDeviceType.MULTI_DEVICE, False, 0),
        (
            {"backup_eligible": True, "backed_up": True},
            True,
            CredentialDeviceType.MULTI_DEVICE,
            True,
            0,
        ),
        ({"sign_count": 7}, True, CredentialDeviceType.SINGLE_DEVICE, False, 7),
    ],
)
def test_registration_flags_are_the_ones_asked(
    knobs: dict[str, Any], uv: bool, device_type: CredentialDeviceType, backed_up: bool, count: int
) -> None:
    """UV, BE, BS and the counter in the authenticator data are what the test asked for."""
    verified = register(SoftAuthenticator(), **knobs)
    assert verified.user_verified is uv
    assert verified.credential_device_type == device_type
    assert verified.credential_backed_up is backed_up
    assert verified.sign_count == count


def test_a_platform_authenticator_says_so() -> None:
    """With transport "internal" the credential is a platform one, as a phone's passkey is."""
    soft = SoftAuthenticator(transports=["internal"])
    credential = soft.create(registration_options()[0], ORIGIN, resident=True)
    assert credential["authenticatorAttachment"] == "platform"
    assert credential["response"]["transports"] == ["internal"]


def test_authentication_passes_and_the_counter_goes_up() -> None:
    """An assertion for a registered key verifies with its public key; each one counts one
    more than the last, and the library accepts each against the one before."""
    soft = SoftAuthenticator()
    registered = register(soft)
    count = registered.sign_count
    for expected in (1, 2):
        options, challenge = authentication_options(registered.credential_id)
        assertion = soft.get(options, ORIGIN)
        verified = verify_authentication_response(
            credential=json.dumps(assertion),
            expected_challenge=challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            credential_public_key=registered.credential_public_key,
            credential_current_sign_count=count,
            require_user_verification=True,
        )
        assert verified.new_sign_count == expected
        assert verified.user_verified is True
        assert verified.credential_id == registered.credential_id
        count = verified.new_sign_count
    # A key registered without the resident flag gives no user handle.
    assert assertion["response"]["userHandle"] is None


def test_a_resident_credential_signs_in_without_an_allow_list() -> None:
    """A passkey sign-in (no allow list) finds the resident credential, and its assertion
    carries the user handle the registration options gave."""
    soft = SoftAuthenticator()
    register(soft)  # a non-resident one first: it must not be the one picked
    passkey = register(soft, resident=True)
    options, challenge = authentication_options()
    assertion = soft.get(options, ORIGIN)
    assert assertion["id"] == b64url(passkey.credential_id)
    assert b64url_decode(assertion["response"]["userHandle"]) == USER_ID
    verified = verify_authentication_response(
        credential=assertion,
        expected_challenge=challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=passkey.credential_public_key,
        credential_current_sign_count=0,
    )
    assert verified.credential_id == passkey.credential_id


def test_no_fitting_credential_is_not_allowed() -> None:
    """Without a resident credential, a sign-in without an allow list finds nothing; an
    allow list of other keys neither; nor does another RP id."""
    soft = SoftAuthenticator()
    register(soft)
    with pytest.raises(CeremonyError) as refused:
        soft.get(authentication_options()[0], ORIGIN)
    assert refused.value.name == "NotAllowedError"
    with pytest.raises(CeremonyError):
        soft.get(authentication_options(b"another key")[0], ORIGIN)
    elsewhere = json.loads(
        options_to_json(
            generate_authentication_options(
                rp_id="example.com",
                allow_credentials=[PublicKeyCredentialDescriptor(id=soft.credentials[0].id)],
            )
        )
    )
    with pytest.raises(CeremonyError):
        soft.get(elsewhere, "https://example.com")


def test_an_excluded_credential_is_not_made_twice() -> None:
    """Creation options that exclude a key the authenticator holds are refused, as a
    browser refuses them (InvalidStateError); nothing new is stored."""
    soft = SoftAuthenticator()
    held = register(soft)
    options, _ = registration_options(
        exclude_credentials=[PublicKeyCredentialDescriptor(id=held.credential_id)]
    )
    with pytest.raises(CeremonyError) as refused:
        soft.create(options, ORIGIN)
    assert refused.value.name == "InvalidStateError"
    assert len(soft.credentials) == 1


@pytest.mark.parametrize(
    ("origin", "knobs", "require_uv", "error", "message"),
    [
        ("http://evil.example", {}, False, InvalidRegistrationResponse, "origin"),
        (ORIGIN, {"rp_id": "evil.example"}, False, InvalidRegistrationResponse, "RP ID hash"),
        (ORIGIN, {"client_data_type": "webauthn.get"}, False, InvalidRegistrationResponse,
         "client data type"),
        (ORIGIN, {"user_present": False}, False, InvalidRegistrationResponse, "User presence"),
        (ORIGIN, {"user_verified": False}, True, InvalidRegistrationResponse,
         "User verification"),
        # BS without BE is impossible; the library's refusal is *not* an
        # InvalidRegistrationResponse (a server must catch WebAuthnException).
        (ORIGIN, {"backed_up": True}, False, InvalidBackupFlags, "backed up"),
    ],
)  # fmt: skip
def test_registration_knobs_make_the_library_refuse(
    origin: str, knobs: dict[str, Any], require_uv: bool, error: type[Exception], message: str
) -> None:
    """Another origin, another RP id hash, the other ceremony's type, no user presence, no
    UV where it is required, BS without BE: each registration is refused, for that reason."""
    options, challenge = registration_options()
    credential = SoftAuthenticator().create(options, origin, **knobs)
    with pytest.raises(error, match=message):
        verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            require_user_verification=require_uv,
        )


@pytest.mark.parametrize(
    ("origin", "knobs", "current", "require_uv", "message"),
    [
        ("http://evil.example", {}, 0, False, "origin"),
        (ORIGIN, {"rp_id": "evil.example"}, 0, False, "RP ID hash"),
        (ORIGIN, {"client_data_type": "webauthn.create"}, 0, False, "client data type"),
        (ORIGIN, {"bad_signature": True}, 0, False, "signature"),
        (ORIGIN, {"user_present": False}, 0, False, "not present"),
        (ORIGIN, {"user_verified": False}, 0, True, "User verification"),
        # A cloned key: its counter at, or below, the one the server last saw.
        (ORIGIN, {"sign_count": 5}, 5, False, "sign count"),
        (ORIGIN, {"sign_count": 3}, 5, False, "sign count"),
        (ORIGIN, {"sign_count": 0}, 5, False, "sign count"),
    ],
)
def test_authentication_knobs_make_the_library_refuse(
    origin: str, knobs: dict[str, Any], current: int, require_uv: bool, message: str
) -> None:
    """Each bad assertion is refused by the library, for that reason."""
    soft = SoftAuthenticator()
    registered = register(soft)
    options, challenge = authentication_options(registered.credential_id)
    assertion = soft.get(options, origin, **knobs)
    with pytest.raises(InvalidAuthenticationResponse, match=message):
        verify_authentication_response(
            credential=assertion,
            expected_challenge=challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            credential_public_key=registered.credential_public_key,
            credential_current_sign_count=current,
            require_user_verification=require_uv,
        )


def test_the_same_knobs_left_alone_pass() -> None:
    """The control for the refusals above: the same key and options, no knob, a counter
    above the last one, pass; a counter of 0 on both sides ("no counter") passes too."""
    soft = SoftAuthenticator()
    registered = register(soft)
    for count, current in ((6, 5), (0, 0)):
        options, challenge = authentication_options(registered.credential_id)
        verified = verify_authentication_response(
            credential=soft.get(options, ORIGIN, sign_count=count),
            expected_challenge=challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            credential_public_key=registered.credential_public_key,
            credential_current_sign_count=current,
            require_user_verification=True,
        )
        assert verified.new_sign_count == count


def test_a_challenge_from_other_options_is_refused() -> None:
    """An assertion answers the challenge of the options it was given: checked against
    another challenge (a replay of an old ceremony), the library refuses it."""
    soft = SoftAuthenticator()
    registered = register(soft)
    old_options, _ = authentication_options(registered.credential_id)
    _, new_challenge = authentication_options(registered.credential_id)
    with pytest.raises(InvalidAuthenticationResponse, match="challenge"):
        verify_authentication_response(
            credential=soft.get(old_options, ORIGIN),
            expected_challenge=new_challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            credential_public_key=registered.credential_public_key,
            credential_current_sign_count=0,
        )

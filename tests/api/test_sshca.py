"""The SSH certificate authority (issue 26): keys, certificates read back by the real
``ssh-keygen -L``, principals for servers, the revocation list checked by ``ssh-keygen -Q``,
the operator's command and the API's new endpoints."""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from io import BytesIO, StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from keyfob.api import flows, sshca
from keyfob.api.models import CaKey, SshCertificate
from keyfob.audit.events import Context
from keyfob.audit.models import Channel, EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import keyring
from keyfob.twofactor import flows as twofactor
from tests.api.conftest import Api
from tests.conftest import Enrolled, enrol, make_user, require_tool

CONTEXT = Context(channel=Channel.WEB, address="192.0.2.7", user_agent="tests")


def user_key(tmp_path: Path, kind: str = "ed25519", name: str = "id") -> Path:
    """A key made by the real ssh-keygen; returns the private key's path."""
    path = tmp_path / name
    subprocess.run(
        [
            require_tool("ssh-keygen"),
            "-q",
            "-t",
            kind,
            "-N",
            "",
            "-C",
            "me@laptop",
            "-f",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


def inspect(tmp_path: Path, certificate: str) -> str:
    cert = tmp_path / "cert-cert.pub"
    cert.write_text(certificate + "\n")
    done = subprocess.run(
        [require_tool("ssh-keygen"), "-L", "-f", str(cert)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_a_certificate_read_back_by_ssh_keygen(
    tmp_path: Path, user_with_totp: Enrolled, kind: str
) -> None:
    user = user_with_totp.user
    key = user_key(tmp_path, kind)
    issued = sshca.issue_certificate(
        user, (key.with_suffix(".pub")).read_text(), CONTEXT, requested_from="203.0.113.9"
    )
    shown = inspect(tmp_path, issued.certificate)
    row = issued.row
    assert f'Key ID: "keyfob-{user.pk}-{row.serial}"' in shown
    assert f"Serial: {row.serial}" in shown and row.serial >> 32 == user.pk
    assert re.search(rf"Principals: \n\s+keyfob-{user.pk}\n\s+Critical Options: \(none\)", shown)
    for extension in sshca.EXTENSIONS:
        assert extension in shown
    ca = CaKey.objects.get(state=CaKey.State.CURRENT)
    assert f"Signing CA: ED25519 {ca.fingerprint}" in shown
    # The key's own fingerprint, as ssh-keygen -l gives it.
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key.with_suffix(".pub"))],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    assert row.fingerprint == listed.split()[1]
    assert row.valid_before - row.valid_after == timedelta(hours=8, minutes=5)
    assert str(row.requested_from) == "203.0.113.9" and row.source_address == ""
    event = SecurityEvent.objects.get(kind=EventKind.SSH_CERT_ISSUED)
    assert event.detail["serial"] == str(row.serial)
    # The CA's private key is stored encrypted, under its own context.
    assert keyring.decrypt(ca.private_encrypted, context=CaKey.context(ca.fingerprint))
    with pytest.raises(keyring.KeyRingError):
        keyring.decrypt(ca.private_encrypted, context=CaKey.context("SHA256:other"))


@override_settings(KEYFOB_SSH_CERT_HOURS=1, KEYFOB_SSH_CERT_SOURCE_ADDRESS=True)
def test_lifetime_and_source_address_are_settings(tmp_path: Path, user_with_totp: Enrolled) -> None:
    line = user_key(tmp_path).with_suffix(".pub").read_text()
    issued = sshca.issue_certificate(
        user_with_totp.user, line, CONTEXT, requested_from="2001:db8::0:1"
    )
    shown = inspect(tmp_path, issued.certificate)
    assert "source-address 2001:db8::1" in shown
    assert issued.row.valid_before - issued.row.valid_after == timedelta(hours=1, minutes=5)
    with pytest.raises(sshca.CertificateRefused) as refused:
        sshca.issue_certificate(user_with_totp.user, line, CONTEXT, requested_from=None)
    assert refused.value.code == "source_unknown"


def test_the_notice_goes_at_most_once_a_day(tmp_path: Path, user_with_totp: Enrolled) -> None:
    line = user_key(tmp_path).with_suffix(".pub").read_text()
    for _ in range(3):
        sshca.issue_certificate(user_with_totp.user, line, CONTEXT)
    assert Outbox.objects.filter(kind=NoticeKind.SSH_CERT_ISSUED).count() == 1
    assert SecurityEvent.objects.filter(kind=EventKind.SSH_CERT_ISSUED).count() == 3
    assert len({row.serial for row in SshCertificate.objects.all()}) == 3


SK_KEY = (
    "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAICFo/k5LU8863u66YC9e"
    "UO2170QduohPURkQnbLa/dczAAAABHNzaDo= me@laptop"
)


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("", "invalid_key"),
        ("ssh-ed25519", "invalid_key"),
        ("ssh-ed25519 AAAA", "invalid_key"),
        ("ssh-ed25519 !!!!", "invalid_key"),
        ("ssh-ed25519 " + "A" * 5000, "invalid_key"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB\x00", "invalid_key"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIé", "invalid_key"),
        (SK_KEY, "sk_key"),
        ("sk-ecdsa-sha2-nistp256@openssh.com AAAA", "sk_key"),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7", "key_type"),
        ("ssh-dss AAAA", "key_type"),
        ("ssh-ed25519-cert-v01@openssh.com AAAA", "invalid_key"),
        (7, "invalid_key"),
        (None, "invalid_key"),
    ],
)
def test_junk_keys_are_refused_with_a_clear_message(
    user_with_totp: Enrolled, line: object, code: str
) -> None:
    with pytest.raises(sshca.CertificateRefused) as refused:
        sshca.issue_certificate(user_with_totp.user, line, CONTEXT)  # type: ignore[arg-type]
    assert refused.value.code == code and refused.value.message
    assert not SshCertificate.objects.exists()


def test_an_ecdsa_key_named_as_ed25519_is_refused(tmp_path: Path, user_with_totp: Enrolled) -> None:
    _kind, data, *_ = user_key(tmp_path, "ecdsa").with_suffix(".pub").read_text().split()
    with pytest.raises(sshca.CertificateRefused):
        sshca.issue_certificate(user_with_totp.user, f"ssh-ed25519 {data}", CONTEXT)


def test_an_account_without_2fa_or_closed_gets_none(
    tmp_path: Path, user_with_totp: Enrolled
) -> None:
    line = user_key(tmp_path).with_suffix(".pub").read_text()
    plain = make_user("bob@example.com")
    with pytest.raises(sshca.CertificateRefused) as refused:
        sshca.issue_certificate(plain, line, CONTEXT)
    assert refused.value.code == "twofactor_off"
    user = user_with_totp.user
    user.is_active = False
    user.save()
    with pytest.raises(sshca.CertificateRefused) as refused:
        sshca.issue_certificate(user, line, CONTEXT)
    assert refused.value.code == "inactive"


def test_a_lifetime_longer_than_a_day_is_a_programming_error(
    tmp_path: Path, user_with_totp: Enrolled
) -> None:
    line = user_key(tmp_path).with_suffix(".pub").read_text()
    with pytest.raises(ValueError):
        sshca.issue_certificate(user_with_totp.user, line, CONTEXT, lifetime=timedelta(days=2))


# -- rotation ------------------------------------------------------------------------------


def test_rotation_publishes_the_next_key_then_promotes_it(db: None) -> None:
    first = sshca.current_key()
    assert [row.pk for row in sshca.published_keys()] == [first.pk]
    done, following = sshca.rotate(CONTEXT)
    assert done == sshca.Rotation.MADE_NEXT
    assert [row.pk for row in sshca.published_keys()] == [first.pk, following.pk]
    assert sshca.current_key().pk == first.pk  # the next key does not sign yet
    done, promoted = sshca.rotate(CONTEXT)
    assert done == sshca.Rotation.PROMOTED and promoted.pk == following.pk
    assert sshca.current_key().pk == following.pk
    # The old key stays published while its certificates may live, then goes.
    assert [row.pk for row in sshca.published_keys()] == [following.pk, first.pk]
    assert sshca.unpublish_retired() == 1
    assert [row.pk for row in sshca.published_keys()] == [following.pk]


def test_ssh_ca_command(tmp_path: Path, user_with_totp: Enrolled) -> None:
    out = StringIO()
    call_command("ssh-ca", "public-key", stdout=out)
    (line,) = out.getvalue().splitlines()
    assert line.startswith("ssh-ed25519 ") and line.split()[2].startswith("keyfob-ca-")
    out = StringIO()
    call_command("ssh-ca", "rotate", stdout=out)
    assert "next CA key" in out.getvalue()
    out = StringIO()
    call_command("ssh-ca", "public-key", stdout=out)
    assert len(out.getvalue().splitlines()) == 2
    issued = sshca.issue_certificate(
        user_with_totp.user, user_key(tmp_path).with_suffix(".pub").read_text(), CONTEXT
    )
    out = StringIO()
    call_command("ssh-ca", "list", "--email", "alice@example.com", stdout=out)
    assert str(issued.row.serial) in out.getvalue()
    for bad in (["revoke"], ["revoke", "12x"], ["revoke", "1" * 30], ["revoke", "5"]):
        with pytest.raises(CommandError):
            call_command("ssh-ca", *bad)
    with pytest.raises(CommandError):
        call_command("ssh-ca", "revoke", "--email", "nobody@example.com")
    with pytest.raises(CommandError):
        call_command("ssh-ca", "krl", "--output", str(tmp_path / "no" / "such" / "dir"))
    out = StringIO()
    call_command("ssh-ca", "revoke", str(issued.row.serial), stdout=out)
    assert "1 certificates revoked" in out.getvalue()
    call_command("ssh-ca", "krl", "--output", str(tmp_path / "krl"))
    assert (tmp_path / "krl").read_bytes().startswith(b"SSHKRL\n\0")


# -- the revocation list -------------------------------------------------------------------


def test_the_krl_revokes_exactly_the_revoked_certificates(
    tmp_path: Path, user_with_totp: Enrolled
) -> None:
    line = user_key(tmp_path).with_suffix(".pub").read_text()
    kept = sshca.issue_certificate(user_with_totp.user, line, CONTEXT)
    gone = sshca.issue_certificate(user_with_totp.user, line, CONTEXT)
    assert sshca.revoke([gone.row], CONTEXT) == 1
    assert sshca.revoke([gone.row], CONTEXT) == 0  # once
    krl = tmp_path / "krl"
    krl.write_bytes(sshca.revocation_list())
    for issued, revoked in ((kept, False), (gone, True)):
        cert = tmp_path / f"{issued.row.serial}-cert.pub"
        cert.write_text(issued.certificate + "\n")
        done = subprocess.run(
            ["ssh-keygen", "-Q", "-f", str(krl), str(cert)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert ("REVOKED" in done.stdout) == revoked, done.stdout
    assert SecurityEvent.objects.filter(kind=EventKind.SSH_CERT_REVOKED).count() == 1


# -- principals for servers ----------------------------------------------------------------


def test_principals_follow_links_tokens_and_2fa(api: Api, linked: Enrolled) -> None:
    user = linked.user
    response = api.post("ssh/principals", {"login": "alice"})
    assert response.status_code == 200 and response.json() == {"principals": [f"keyfob-{user.pk}"]}
    assert api.post("ssh/principals", {"login": "bob"}).json() == {"principals": []}
    # Another server's token does not see web1's links.
    _row, other = flows.create_token("web2")
    response = api.client.post(
        "/api/v1/ssh/principals", {"login": "alice"}, content_type="application/json",
        headers={"Authorization": f"Bearer {other}"},
    )  # fmt: skip
    assert response.json() == {"principals": []}
    twofactor.disable_by_support(user, CONTEXT)
    assert api.post("ssh/principals", {"login": "alice"}).json() == {"principals": []}
    enrol(user)
    assert api.post("ssh/principals", {"login": "alice"}).json()["principals"]
    flows.unlink("alice", "web1", CONTEXT)
    assert api.post("ssh/principals", {"login": "alice"}).json() == {"principals": []}
    flows.link(user, "alice", "web1", CONTEXT)
    flows.revoke_token("web1")
    assert api.post("ssh/principals", {"login": "alice"}).status_code == 401


@pytest.mark.parametrize(
    "body", [{}, {"login": 7}, {"login": "a b"}, {"login": "x" * 40}, [1], "nope", {"login": None}]
)
def test_principals_junk_is_a_400(api: Api, linked: Enrolled, body: object) -> None:
    response = api.post("ssh/principals", body)
    assert response.status_code == 400 and "error" in response.json()


def test_ca_and_krl_endpoints(api: Api, linked: Enrolled) -> None:
    headers = {"Authorization": f"Bearer {api.token}"}
    response = api.client.get("/api/v1/ssh/ca", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"keys": [sshca.current_key().public_key]}
    response = api.client.get("/api/v1/ssh/krl", headers=headers)
    assert response.status_code == 200 and response["Content-Type"] == "application/octet-stream"
    assert BytesIO(response.content).read(8) == b"SSHKRL\n\0"
    for path in ("ssh/ca", "ssh/krl"):
        assert api.client.get(f"/api/v1/{path}").status_code == 401
        assert api.post(path, {}).status_code == 405

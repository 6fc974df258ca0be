"""The SSH certificate authority (issue 26): its keys, the certificates it signs, the
principals servers ask for, and the revocation list.

A certificate names the account, not a Unix login: its principal is ``keyfob-<account
id>`` (:func:`principal`), plus ``keyfob-<id>-mfa`` when the session that approved it had
proved a second factor and ``keyfob-<id>-key`` when a security key or passkey (the
approval's strength, :func:`strength_principals`). Which logins it opens is decided at
each login, server by server: sshd's ``AuthorizedPrincipalsCommand`` asks the API, with
that server's token, which principals may log in as that Unix user (:func:`principals_for`),
which reads the SSH links and the team grants in force (issue 27: a member logs in as a
granted login with their own certificate, of the strength the grant's rule asks). So
unlinking a login, revoking the server's token, turning the account's 2FA off or removing
a member stops the next login, even with an unexpired certificate.

Signing is ``cryptography``'s :class:`SSHCertificateBuilder`; the revocation list is built
by OpenSSH's own ``ssh-keygen -k`` (the KRL format has no other well-kept writer).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    SSHCertificateBuilder,
    SSHCertificateType,
    load_ssh_public_key,
)
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from keyfob.accounts.models import Factor, User
from keyfob.api.app_settings import app_settings
from keyfob.api.flows import ApiError
from keyfob.api.models import CaKey, SshCertificate, SshLogin
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind, NoticeKind, Outbox
from keyfob.core import clock, keyring
from keyfob.teams import rules
from keyfob.teams.models import Grant, Rule
from keyfob.twofactor.flows import has_2fa

# The key types a certificate is signed for. FIDO ``sk-`` keys are refused: cryptography
# reads an ``sk-ssh-ed25519@openssh.com`` key as a plain Ed25519 key (it drops the
# application string), so the certificate would be for another key type, one the
# customer's security key cannot use (checked with cryptography 50; see the tests).
KEY_TYPES = {
    "ssh-ed25519": ed25519.Ed25519PublicKey,
    "ecdsa-sha2-nistp256": ec.EllipticCurvePublicKey,
    "ecdsa-sha2-nistp384": ec.EllipticCurvePublicKey,
    "ecdsa-sha2-nistp521": ec.EllipticCurvePublicKey,
}
MAX_KEY_LINE = 4096
# What ssh-keygen grants by default, in the order the format wants (sorted).
EXTENSIONS = (
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
)
# A certificate holds from a little before it was signed: a server's clock a few minutes
# behind Keyfob's must not refuse it.
CLOCK_SKEW = timedelta(minutes=5)
MAX_LIFETIME = timedelta(hours=24)
NOTICE_EVERY = timedelta(days=1)
SSH_KEYGEN_TIMEOUT = 30

# Why a certificate is not signed, by code: what a person reads (the approval page, the
# API's message, the operator's command).
MESSAGES = {
    "invalid_key": _(
        "This is not an OpenSSH public key: give the one line of your .pub file "
        "(for example ssh-ed25519 AAAA… you@host)."
    ),
    "sk_key": _(
        "Security-key (sk-) SSH keys cannot be certified yet: use an Ed25519 or ECDSA key "
        "(ssh-keygen -t ed25519)."
    ),
    "key_type": _("Only Ed25519 and ECDSA keys can be certified (ssh-keygen -t ed25519)."),
    "twofactor_off": _(
        "Two-factor authentication is off for this account: turn it on to get SSH certificates."
    ),
    "inactive": _("This account is closed."),
    "source_unknown": _(
        "The address the request came from is not known, and certificates here hold only "
        "from that address."
    ),
}


class CertificateRefused(ApiError):
    """A certificate is not signed: ``code`` is a key of :data:`MESSAGES`."""

    def __init__(self, code: str) -> None:
        super().__init__(code, str(MESSAGES[code]))


class KrlError(ApiError):
    """The revocation list cannot be built (ssh-keygen missing or failing)."""


def principal(user: User | int, strength: str = "") -> str:
    """The certificate principal naming an account: ``keyfob-<account id>``, or with a
    ``strength`` of :data:`STRENGTHS`, ``keyfob-<account id>-<strength>``."""
    name = f"keyfob-{user if isinstance(user, int) else user.pk}"
    return f"{name}-{strength}" if strength else name


# How strongly the session that approved a certificate had signed in, as principal
# suffixes, from the weakest: each stands for the proofs a session of that strength holds,
# and teams.rules (the one place that decides) says which a grant's rule needs.
STRENGTHS: tuple[tuple[str, frozenset[str]], ...] = (
    ("", frozenset({Factor.PASSWORD})),
    ("mfa", frozenset({Factor.PASSWORD, Factor.APP_CODE})),
    ("key", frozenset({Factor.PASSWORD, Factor.SECURITY_KEY})),
)


def strength_principals(user: User, factors: Iterable[str]) -> list[str]:
    """A certificate's principals for an approval whose session proved ``factors``: the
    account's, and one per strength those factors reach."""
    proved = set(factors)
    names = [principal(user)]
    if rules.met(Rule.TWO_FACTOR, proved):
        names.append(principal(user, "mfa"))
    if rules.met(Rule.KEY, proved):
        names.append(principal(user, "key"))
    return names


def member_principal(grant: Grant, now: datetime | None = None) -> str | None:
    """The principal a member's certificate must carry for ``grant`` to open its logins:
    the member's own at the weakest strength whose proofs the grant's rule accepts (or in
    its grace period), None when none does (an unknown rule, an ended grant)."""
    for strength, factors in STRENGTHS:
        if rules.counts(grant, factors, now):
            return principal(grant.member_id, strength)
    return None


def granted_logins(user: User, factors: Iterable[str]) -> list[tuple[str, str, Grant]]:
    """The (login, server, grant) a member's certificate from a session that proved
    ``factors`` opens through grants that count (the owner's link still in force)."""
    counting, _waiting = rules.split(user, factors)
    out: list[tuple[str, str, Grant]] = []
    for grant in counting:
        pairs = {(str(p[0]), str(p[1])) for p in grant.logins if isinstance(p, list | tuple)}
        if not pairs:
            continue
        for link in SshLogin.objects.filter(user_id=grant.owner_id).exclude(server=""):
            if (link.login, link.server) in pairs:
                out.append((link.login, link.server, grant))
    return out


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a key's wire form (as ``ssh-keygen -l`` shows it)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


# -- the authority's keys ---------------------------------------------------------------


def _new_key(state: CaKey.State) -> CaKey:
    private = ed25519.Ed25519PrivateKey.generate()
    line = private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    blob = base64.b64decode(line.split()[1])
    print_ = fingerprint(blob)
    now = clock.now()
    return CaKey.objects.create(
        fingerprint=print_,
        public_key=f"{line} keyfob-ca-{now:%Y%m%d}",
        private_encrypted=keyring.encrypt(
            private.private_bytes_raw(), context=CaKey.context(print_)
        ),
        state=state,
        created_at=now,
        promoted_at=now if state == CaKey.State.CURRENT else None,
    )


def current_key() -> CaKey:
    """The key that signs, made on first use (two processes at once make one)."""
    row = CaKey.objects.filter(state=CaKey.State.CURRENT).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return _new_key(CaKey.State.CURRENT)
    except IntegrityError:  # another process made it meanwhile
        return CaKey.objects.get(state=CaKey.State.CURRENT)


def published_keys() -> list[CaKey]:
    """The keys servers trust (``TrustedUserCAKeys``): the current one, the next one during a
    rotation, and a retired one until the certificates it signed have expired."""
    current_key()
    since = clock.now() - MAX_LIFETIME - CLOCK_SKEW
    rows = CaKey.objects.filter(published=True).exclude(
        state=CaKey.State.RETIRED, retired_at__lte=since
    )
    order = {CaKey.State.CURRENT: 0, CaKey.State.NEXT: 1, CaKey.State.RETIRED: 2}
    return sorted(rows, key=lambda row: order[CaKey.State(row.state)])


class Rotation:
    """What :func:`rotate` did."""

    MADE_FIRST = "made_first"
    MADE_NEXT = "made_next"
    PROMOTED = "promoted"


def rotate(context: Context) -> tuple[str, CaKey]:
    """One step of a rotation: make a NEXT key (servers fetch it with the published list),
    or, when there is one, make it CURRENT and retire the old one (still published until
    its certificates have expired). Returns what was done and the key concerned."""
    with transaction.atomic():
        rows = {
            row.state: row
            for row in CaKey.objects.select_for_update().filter(
                state__in=[CaKey.State.CURRENT, CaKey.State.NEXT]
            )
        }
        current, waiting = rows.get(CaKey.State.CURRENT), rows.get(CaKey.State.NEXT)
        if current is None and waiting is None:
            return Rotation.MADE_FIRST, _new_key(CaKey.State.CURRENT)
        if waiting is None:
            return Rotation.MADE_NEXT, _new_key(CaKey.State.NEXT)
        now = clock.now()
        if current is not None:
            CaKey.objects.filter(pk=current.pk).update(state=CaKey.State.RETIRED, retired_at=now)
        CaKey.objects.filter(pk=waiting.pk).update(state=CaKey.State.CURRENT, promoted_at=now)
        waiting.refresh_from_db()
        return Rotation.PROMOTED, waiting


def unpublish_retired() -> int:
    """Stop publishing every retired key now (a key feared stolen): the certificates they
    signed stop working once servers fetch the list. Returns how many keys."""
    return CaKey.objects.filter(state=CaKey.State.RETIRED, published=True).update(published=False)


def _private(row: CaKey) -> ed25519.Ed25519PrivateKey:
    raw = keyring.decrypt(row.private_encrypted, context=CaKey.context(row.fingerprint))
    return ed25519.Ed25519PrivateKey.from_private_bytes(raw)


# -- issuing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class UserKey:
    """A customer's public key, checked: its type, wire form and fingerprint."""

    key_type: str
    key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
    fingerprint: str


def parse_public_key(line: object) -> UserKey:
    """The public key of one OpenSSH ``.pub`` line (type, base64, optional comment).

    Raises :class:`CertificateRefused` ("invalid_key", "sk_key", "key_type").
    """
    if not isinstance(line, str) or not 0 < len(line) <= MAX_KEY_LINE:
        raise CertificateRefused("invalid_key")
    if not line.isascii() or not line.strip().isprintable():
        raise CertificateRefused("invalid_key")
    fields = line.split()
    if len(fields) < 2:
        raise CertificateRefused("invalid_key")
    key_type, data = fields[0], fields[1]
    if key_type.startswith("sk-"):
        raise CertificateRefused("sk_key")
    if key_type not in KEY_TYPES:
        raise CertificateRefused("key_type" if "-cert-" not in key_type else "invalid_key")
    try:
        blob = base64.b64decode(data, validate=True)
        key = load_ssh_public_key(f"{key_type} {data}".encode())
    except (ValueError, TypeError):
        raise CertificateRefused("invalid_key") from None
    if not isinstance(key, KEY_TYPES[key_type]):
        raise CertificateRefused("invalid_key")
    # The blob names its own type first: it must be the line's.
    if blob[4 : 4 + len(key_type)] != key_type.encode():
        raise CertificateRefused("invalid_key")
    assert isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey)
    return UserKey(key_type, key, fingerprint(blob))


@dataclass(frozen=True)
class Issued:
    """A signed certificate: the ``-cert.pub`` line to write beside the key, and its row."""

    certificate: str
    row: SshCertificate


def _serial(user: User) -> int:
    """A new serial naming the account: its id in the high bits, 32 random bits below."""
    return (int(user.pk) << 32) | secrets.randbits(32)


def _address(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def issue_certificate(
    user: User,
    public_key: str,
    context: Context,
    *,
    factors: Iterable[str] = (),
    requested_from: str | None = None,
    lifetime: timedelta | None = None,
) -> Issued:
    """Sign an OpenSSH user certificate for ``public_key`` (one ``.pub`` line) of ``user``.

    The caller has checked that the session approving it holds the proofs it needs (the
    device approval page: a recent sign-in with the account's strongest factor); this
    function checks the key and the account (active, 2FA on). ``requested_from`` is the
    address that asked for the certificate (the CLI's, not the approving browser's): it is
    recorded, and bound into the certificate (``source-address``) when
    ``KEYFOB_SSH_CERT_SOURCE_ADDRESS`` is on. ``factors``: those of the approving session's
    live proofs, which give the certificate its strength principals (none given: the
    account's principal only). ``lifetime`` is for tests only (an expired or
    seconds-long certificate); production callers leave it to ``KEYFOB_SSH_CERT_HOURS``.

    Records SSH_CERT_ISSUED and mails a notice, at most one a day, in one transaction.
    Raises :class:`CertificateRefused`.
    """
    parsed = parse_public_key(public_key)
    if not user.is_active:
        raise CertificateRefused("inactive")
    if not has_2fa(user):
        raise CertificateRefused("twofactor_off")
    address = _address(requested_from)
    source = ""
    if app_settings.ssh_cert_source_address:
        if address is None:
            raise CertificateRefused("source_unknown")
        source = address
    if lifetime is None:
        lifetime = timedelta(hours=app_settings.ssh_cert_hours)
    if lifetime > MAX_LIFETIME:
        raise ValueError("a certificate lives at most 24 hours")
    now = clock.now().replace(microsecond=0)
    valid_after = now - CLOCK_SKEW
    valid_before = now + lifetime
    if valid_before <= valid_after:
        raise ValueError("a certificate must be valid for some time")
    names = strength_principals(user, factors)
    with transaction.atomic():
        ca = current_key()
        for _attempt in range(5):
            serial = _serial(user)
            if not SshCertificate.objects.filter(serial=serial).exists():
                break
        key_id = f"{principal(user)}-{serial}"
        builder = (
            SSHCertificateBuilder()
            .public_key(parsed.key)
            .serial(serial)
            .type(SSHCertificateType.USER)
            .key_id(key_id.encode())
            .valid_principals([name.encode() for name in names])
            .valid_after(int(valid_after.timestamp()))
            .valid_before(int(valid_before.timestamp()))
        )
        for extension in EXTENSIONS:
            builder = builder.add_extension(extension.encode(), b"")
        if source:
            builder = builder.add_critical_option(b"source-address", source.encode())
        certificate = builder.sign(_private(ca)).public_bytes().decode()
        row = SshCertificate.objects.create(
            serial=serial,
            key_id=key_id,
            user=user,
            ca_key=ca,
            key_type=parsed.key_type,
            fingerprint=parsed.fingerprint,
            principals=names,
            valid_after=valid_after,
            valid_before=valid_before,
            source_address=source,
            requested_from=address,
            created_at=now,
        )
        detail = {
            "serial": str(serial),
            "fingerprint": parsed.fingerprint,
            "valid_before": valid_before.isoformat(),
        }
        record(user, EventKind.SSH_CERT_ISSUED, context, **detail)
        # At most one notice a day: the account's row lock keeps two at once to one.
        User.objects.select_for_update().filter(pk=user.pk).first()
        if not Outbox.objects.filter(
            user=user, kind=NoticeKind.SSH_CERT_ISSUED, created_at__gt=now - NOTICE_EVERY
        ).exists():
            notices.queue(user, NoticeKind.SSH_CERT_ISSUED, context, **detail)
    return Issued(f"{certificate} {key_id}", row)


def certificates_of(user: User, limit: int = 50) -> list[SshCertificate]:
    """The account's certificates, newest first."""
    return list(SshCertificate.objects.filter(user=user)[:limit])


def revoke(rows: list[SshCertificate], context: Context) -> int:
    """Revoke certificates not yet revoked (they go into the revocation list); records
    SSH_CERT_REVOKED for each. Returns how many were revoked."""
    done = 0
    now = clock.now()
    with transaction.atomic():
        for row in rows:
            if SshCertificate.objects.filter(pk=row.pk, revoked_at__isnull=True).update(
                revoked_at=now
            ):
                done += 1
                record(row.user, EventKind.SSH_CERT_REVOKED, context, serial=str(row.serial))
    return done


# -- servers ----------------------------------------------------------------------------


def principals_for(server: str, login: str) -> list[str]:
    """The principals that may log in as Unix ``login`` on ``server`` (a token's name):
    the account linked to that login there, if it is active and its 2FA is on; and each
    member whose live grant from that account includes (login, server), at the strength
    the grant's rule asks (:func:`member_principal`), if the member is active with 2FA on.
    An account whose 2FA is off gets none: its certificates stop opening anything (as a
    code prompt would refuse it). A closed owner account opens nothing to its members."""
    link = SshLogin.objects.select_related("user").filter(login=login, server=server).first()
    if link is None or not link.user.is_active:
        return []
    names = [principal(link.user)] if has_2fa(link.user) else []
    now = clock.now()
    grants = Grant.objects.filter(owner=link.user, ended_at__isnull=True).select_related("member")
    for grant in grants:
        if [login, server] not in grant.logins:
            continue
        if not grant.member.is_active or not has_2fa(grant.member):
            continue
        name = member_principal(grant, now)
        if name is not None and name not in names:
            names.append(name)
    return names


def revocation_list() -> bytes:
    """The OpenSSH KRL of the revoked certificates not yet expired, by serial under the CA
    key that signed them, built by ``ssh-keygen -k``. Raises :class:`KrlError`."""
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise KrlError("krl", "ssh-keygen is missing: apt-get install openssh-client")
    revoked = SshCertificate.objects.filter(
        revoked_at__isnull=False, valid_before__gt=clock.now()
    ).select_related("ca_key")
    by_ca: dict[int, tuple[CaKey, list[int]]] = {}
    for row in revoked:
        by_ca.setdefault(row.ca_key_id, (row.ca_key, []))[1].append(row.serial)
    with tempfile.TemporaryDirectory(prefix="keyfob-krl-") as tmp:
        out = Path(tmp) / "krl"
        empty = Path(tmp) / "empty"
        empty.write_text("")
        runs: list[list[str]] = [[keygen, "-k", "-f", str(out), str(empty)]]
        for index, (ca, serials) in enumerate(by_ca.values()):
            ca_file = Path(tmp) / f"ca{index}.pub"
            ca_file.write_text(ca.public_key + "\n")
            spec = Path(tmp) / f"spec{index}"
            spec.write_text("".join(f"serial: {serial}\n" for serial in sorted(serials)))
            runs.append([keygen, "-k", "-u", "-f", str(out), "-s", str(ca_file), str(spec)])
        for argv in runs:
            try:
                done = subprocess.run(
                    argv, capture_output=True, text=True, timeout=SSH_KEYGEN_TIMEOUT, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise KrlError("krl", f"ssh-keygen failed: {exc}") from None
            if done.returncode != 0:
                raise KrlError("krl", f"ssh-keygen failed: {done.stderr.strip()}")
        return out.read_bytes()

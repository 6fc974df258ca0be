"""Server tokens (how an SSH server proves itself to the API) and Unix login links."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from keyfob.core import clock


class ServerToken(models.Model):
    """One SSH server's credential. Only a hash of the token is stored.

    The token reads ``kfs_<key>_<secret>``: ``key`` (public, indexed) finds the row, and
    the SHA-256 of the whole token is compared in constant time with ``digest``. The token
    is random (256 bits), so a fast hash is enough: nothing to brute-force.
    """

    name = models.CharField(max_length=64, unique=True)
    key = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    can_manage_links = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=clock.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SshLogin(models.Model):
    """A Unix login on one server (``server`` = a token's name) that belongs to an account:
    its logins on that server ask for the account's code, and only that server's token
    reaches it.

    ``server`` = "" is a link for every server made before issue 15: kept for the
    provider to see and replace, but in force nowhere (migration 0002 turned those used on
    a server into links for that server).
    """

    login = models.CharField(max_length=32)
    server = models.CharField(max_length=64, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ssh_logins"
    )
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        ordering = ["login", "server"]
        constraints = [
            models.UniqueConstraint(fields=["login", "server"], name="sshlogin_login_server")
        ]

    def __str__(self) -> str:
        return f"{self.login}@{self.server or '*'}"


class SshLinkRequest(models.Model):
    """A server's request to link its Unix ``login`` to an account, waiting for the
    account's answer on its Security page (issue 22).

    It is in force nowhere: the verify and check endpoints read :class:`SshLogin` only, so a
    request cannot be used to verify, probe or throttle the account before its owner
    confirms it. Several accounts may be asked for one login; the first to confirm gets it.
    A request not answered within ``REQUEST_DAYS`` expires (and counts for nothing).
    """

    login = models.CharField(max_length=32)
    server = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ssh_link_requests"
    )
    created_at = models.DateTimeField(default=clock.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["login", "server", "user"], name="sshlinkrequest_login_server_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.login}@{self.server} (asked)"

"""The principal names keyfob-ssh's AuthorizedPrincipalsCommand passes on to sshd: an
account's, or a team member's at a strength (issue 27); anything else fails closed."""

from __future__ import annotations

import pytest

from keyfob.ssh.certificates import PRINCIPAL_RE


@pytest.mark.parametrize("name", ["keyfob-1", "keyfob-42-mfa", "keyfob-42-key"])
def test_names_keyfob_gives(name: str) -> None:
    assert PRINCIPAL_RE.fullmatch(name)


@pytest.mark.parametrize(
    "name",
    ["keyfob-", "keyfob-1-admin", "keyfob-1-mfa-key", "keyfob-1-key\n", "root", "keyfob-x-mfa"],
)
def test_anything_else_is_refused(name: str) -> None:
    assert not PRINCIPAL_RE.fullmatch(name)

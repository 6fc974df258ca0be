"""Which SSH logins an owner can grant: the owner's links, which the ``api`` app (a layer
above) owns. It fills :data:`LOGIN_SOURCES` from its ``AppConfig.ready()``; teams asks
:func:`owner_logins` and never imports api."""

from __future__ import annotations

from collections.abc import Callable

from keyfob.accounts.models import User

# Each source answers an account's SSH logins as (login, server) pairs.
LoginSource = Callable[[User], list[tuple[str, str]]]
LOGIN_SOURCES: list[LoginSource] = []


def owner_logins(owner: User) -> list[tuple[str, str]]:
    """The (login, server) pairs ``owner`` can grant, sorted, each once."""
    found = {
        (str(login), str(server)) for source in LOGIN_SOURCES for login, server in source(owner)
    }
    return sorted(found)

"""Notices go out in the language the customer last read the portal in (kept on the
account), not only in the profile's setting (before: the site's default, English, whenever
the profile left the choice to the browser)."""

from __future__ import annotations

from django.test import Client

from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.models import NoticeKind, Outbox
from tests.conftest import enrol, password_step


def test_a_french_reader_gets_french_notices(user: User, frozen_time: float) -> None:
    assert user.language == ""  # "Browser's language" in the profile
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    password_step(client)
    assert "Sécurité" in client.get("/account/security/").content.decode()
    user.refresh_from_db()
    assert user.last_language == "fr"
    enrol(user)
    row = Outbox.objects.get(kind=NoticeKind.TWOFACTOR_ON)
    assert row.language == "fr"
    assert notices.render(row).text.startswith("Bonjour")


def test_the_footer_switch_wins_over_the_profile(user: User, frozen_time: float) -> None:
    User.objects.filter(pk=user.pk).update(language="fr")
    client = Client()
    password_step(client)
    client.get("/account/")
    client.post("/i18n/setlang/", {"language": "en", "next": "/account/"})
    client.get("/account/")
    user.refresh_from_db()
    assert (user.language, user.last_language) == ("fr", "en")
    enrol(user)
    assert Outbox.objects.get(kind=NoticeKind.TWOFACTOR_ON).language == "en"


def test_a_reset_code_comes_in_the_language_of_the_page(user: User, frozen_time: float) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    for email in ("alice@example.com", "nobody@example.com"):
        client.post("/login/reset/", {"email": email})
        row = Outbox.objects.get(kind=NoticeKind.PASSWORD_RESET_CODE, to=email)
        assert row.language == "fr"
        assert notices.render(row).subject.startswith("Keyfob: ")
        assert notices.render(row).text.startswith("Bonjour")

"""`keyfob check --deploy` on the provider's issuer: plain http refused, an issuer taken
from the request warned about behind a proxy or with several host names."""

from __future__ import annotations

from typing import Any

from keyfob.site.checks import check_production_settings


def ids(settings: Any) -> set[str]:
    return {m.id for m in check_production_settings() if m.id}


def test_an_http_issuer_is_refused(settings: Any) -> None:
    settings.KEYFOB_OIDC_ISSUER = "http://portal.example"
    assert "keyfob.E008" in ids(settings)
    settings.KEYFOB_OIDC_ISSUER = "https://portal.example"
    assert not {"keyfob.E008", "keyfob.W007"} & ids(settings)


def test_an_issuer_from_the_request_behind_a_proxy_is_warned(settings: Any) -> None:
    settings.KEYFOB_OIDC_ISSUER = ""
    settings.ALLOWED_HOSTS = ["portal.example"]
    settings.KEYFOB_TRUSTED_PROXIES = []
    assert "keyfob.W007" not in ids(settings)
    settings.KEYFOB_TRUSTED_PROXIES = ["127.0.0.1"]
    assert "keyfob.W007" in ids(settings)
    settings.KEYFOB_TRUSTED_PROXIES = []
    settings.ALLOWED_HOSTS = ["portal.example", "login.example"]
    assert "keyfob.W007" in ids(settings)

"""The site's URLs, plus a stand-in for "Add a security key" (``account:add-key``) while
that page is not in this branch (it is being written on branch `keys`). Only the staff
rule's tests use it (``@pytest.mark.urls``); once the real page is there, these are the
site's URLs unchanged.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, URLPattern, URLResolver, include, path, reverse

from keyfob.site import urls as site

handler400 = site.handler400
handler403 = site.handler403
handler404 = site.handler404
handler500 = site.handler500


def add_key_placeholder(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Add a security key (placeholder)")


def _patterns() -> list[URLPattern | URLResolver]:
    try:
        reverse("account:add-key", urlconf=site)
    except NoReverseMatch:
        pass
    else:
        return list(site.urlpatterns)
    patterns, namespace = site.account_patterns
    account = (
        [*patterns, path("security/keys/add/", add_key_placeholder, name="add-key")],
        namespace,
    )
    # The first `account` namespace found wins both ways (resolve and reverse).
    return [path("account/", include(account)), *site.urlpatterns]


urlpatterns = _patterns()

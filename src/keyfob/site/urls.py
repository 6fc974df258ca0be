from django.urls import include, path
from django.views.generic import RedirectView
from django.views.i18n import set_language

from keyfob.accounts.urls import signin_help_urlpatterns
from keyfob.api.urls import account_urlpatterns as api_account_urlpatterns
from keyfob.oidc import views as oidc_views
from keyfob.oidc.urls import account_urlpatterns as oidc_account_urlpatterns
from keyfob.twofactor.urls import signin_urlpatterns

# One `account:` namespace for the account pages of both apps that own them.
account_patterns = (
    [
        path("", include("keyfob.accounts.urls")),
        path("", include("keyfob.twofactor.urls")),
        path("", include(api_account_urlpatterns)),
        path("", include(oidc_account_urlpatterns)),
        path("", include("keyfob.teams.urls")),
    ],
    "account",
)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="account:security"), name="home"),
    path("", include(signin_urlpatterns)),
    path("", include(signin_help_urlpatterns)),
    path("account/", include(account_patterns)),
    path("i18n/setlang/", set_language, name="set_language"),
    path("support/", include("keyfob.support.urls")),
    path("api/v1/", include("keyfob.api.urls")),
    path("oidc/", include("keyfob.oidc.urls")),
    # Where relying parties look first for the issuer at the host's root (OpenID Connect
    # Discovery: issuer + /.well-known/openid-configuration).
    path(
        ".well-known/openid-configuration",
        oidc_views.DiscoveryView.as_view(),
        name="openid-configuration",
    ),
    path("", include("keyfob.site.ops_urls")),
]

# Keyfob's own error pages (they apply when KEYFOB_DEBUG is off, as in production).
handler400 = "keyfob.site.views.bad_request"
handler403 = "keyfob.site.views.permission_denied"
handler404 = "keyfob.site.views.page_not_found"
handler500 = "keyfob.site.views.server_error"

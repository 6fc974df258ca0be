from django.urls import include, path
from django.views.generic import RedirectView
from django.views.i18n import set_language

from keyfob.accounts import views as accounts
from keyfob.twofactor import views as twofactor

account_patterns = (
    [
        path("", accounts.profile_view, name="profile"),
        path("password/", accounts.password_view, name="password"),
        path("security/", twofactor.security_view, name="security"),
        path("security/setup/", twofactor.setup_view, name="setup"),
        path("security/disable/", twofactor.disable_view, name="disable"),
        path("security/recovery-codes/", twofactor.recovery_codes_view, name="recovery-codes"),
        path(
            "security/recovery-codes/download/",
            twofactor.recovery_codes_download,
            name="recovery-codes-download",
        ),
        path("security/recovery-codes/new/", twofactor.regenerate_view, name="regenerate"),
        path("security/browsers/revoke/", twofactor.revoke_browser_view, name="revoke-all"),
        path(
            "security/browsers/<int:pk>/revoke/",
            twofactor.revoke_browser_view,
            name="revoke-browser",
        ),
        path("confirm/", twofactor.reauth_view, name="reauth"),
        path("email/", accounts.email_view, name="email"),
        path("email/confirm/", accounts.email_confirm_view, name="email-confirm"),
    ],
    "account",
)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="account:security"), name="home"),
    path("login/", accounts.login_view, name="login"),
    path("login/code/", twofactor.signin_code_view, name="login-code"),
    path("logout/", accounts.logout_view, name="logout"),
    path("account/", include(account_patterns)),
    path("i18n/setlang/", set_language, name="set_language"),
    path("support/", include("keyfob.support.urls")),
    path("api/v1/", include("keyfob.api.urls")),
    path("", include("keyfob.site.ops_urls")),
]

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
    path("", include("keyfob.site.ops_urls")),
]

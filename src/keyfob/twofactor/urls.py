"""Pages of this app. ``urlpatterns`` join accounts' pages under /account/ in the `account`
namespace; ``signin_urlpatterns`` are the sign-in steps at the site's root (site/urls.py
mounts both)."""

from django.urls import URLPattern, path

from keyfob.twofactor.flows import Family
from keyfob.twofactor.views import apps, keys, security, signin

signin_urlpatterns: list[URLPattern] = [
    path("login/", signin.login_view, name="login"),
    path("login/code/", signin.signin_code_view, name="login-code"),
    path("login/code/key-options/", signin.signin_key_options_view, name="login-key-options"),
    path("login/passkey/", signin.passkey_signin_view, name="login-passkey"),
    path("login/passkey/options/", signin.passkey_options_view, name="login-passkey-options"),
    path("logout/", signin.logout_view, name="logout"),
]

urlpatterns: list[URLPattern] = [
    path("security/", security.security_view, name="security"),
    path("security/setup/", apps.setup_view, name="setup"),
    path("security/setup/phone/", apps.setup_phone_view, name="setup-phone"),
    path("security/disable/", security.disable_view, name="disable"),
    path("security/keys/add/", keys.add_key_view, name="add-key"),
    path("security/staff-key/", keys.staff_key_view, name="staff-key"),
    path("security/keys/options/", keys.add_key_options_view, name="add-key-options"),
    # Apps and keys: one rename and one remove page, the family told by the URL.
    path(
        "security/apps/<int:pk>/rename/",
        security.rename_view,
        {"family": Family.APP},
        name="rename-authenticator",
    ),
    path(
        "security/apps/<int:pk>/remove/",
        security.remove_view,
        {"family": Family.APP},
        name="remove-authenticator",
    ),
    path(
        "security/keys/<int:pk>/rename/",
        security.rename_view,
        {"family": Family.KEY},
        name="rename-key",
    ),
    path(
        "security/keys/<int:pk>/remove/",
        security.remove_view,
        {"family": Family.KEY},
        name="remove-key",
    ),
    path("security/recovery-codes/", security.recovery_codes_view, name="recovery-codes"),
    path(
        "security/recovery-codes/download/",
        security.recovery_codes_download,
        name="recovery-codes-download",
    ),
    path("security/recovery-codes/new/", security.regenerate_view, name="regenerate"),
    path("security/browsers/revoke/", security.revoke_browser_view, name="revoke-all"),
    path("security/browsers/<int:pk>/revoke/", security.revoke_browser_view, name="revoke-browser"),
    path(
        "security/sessions/<int:pk>/sign-out/",
        security.sign_out_session_view,
        name="sign-out-session",
    ),
    path("security/sessions/sign-out/", security.sign_out_others_view, name="sign-out-others"),
    path("confirm/", signin.reauth_view, name="reauth"),
    path("confirm/key-options/", signin.reauth_key_options_view, name="reauth-key-options"),
]

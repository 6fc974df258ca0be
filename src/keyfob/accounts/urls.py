"""Account pages of this app; site/urls.py mounts them at /account/ in the `account` namespace."""

from django.urls import URLPattern, path

from keyfob.accounts import views

urlpatterns: list[URLPattern] = [
    path("", views.profile_view, name="profile"),
    path("password/", views.password_view, name="password"),
    path("email/", views.email_view, name="email"),
    path("email/confirm/", views.email_confirm_view, name="email-confirm"),
    path("notice-address/", views.notice_email_view, name="notice-email"),
    path("notice-address/confirm/", views.notice_email_confirm_view, name="notice-email-confirm"),
    path("notice-address/remove/", views.notice_email_remove_view, name="notice-email-remove"),
]

# Signed out, beside the sign-in: site/urls.py mounts them at the site's root.
signin_help_urlpatterns: list[URLPattern] = [
    path("login/help/", views.signin_help_view, name="login-help"),
    path("login/reset/", views.reset_request_view, name="password-reset"),
    path("login/reset/code/", views.reset_code_view, name="password-reset-code"),
]

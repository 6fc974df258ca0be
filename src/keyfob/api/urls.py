from django.urls import URLPattern, path

from keyfob.api import views

# The account's pages of this app, joined to the `account` namespace under /account/ by
# site/urls.py.
account_urlpatterns: list[URLPattern] = [
    path("security/ssh/requests/<int:pk>/", views.ssh_request_view, name="ssh-request"),
]

app_name = "api"
urlpatterns: list[URLPattern] = [
    path("openapi.json", views.openapi, name="openapi"),
    path("ssh/verify", views.ssh_verify, name="ssh-verify"),
    path("ssh/check", views.ssh_check, name="ssh-check"),
    path("ssh/principals", views.ssh_principals, name="ssh-principals"),
    path("ssh/ca", views.ssh_ca, name="ssh-ca"),
    path("ssh/certificates", views.ssh_certificates, name="ssh-certificates"),
    path("ssh/krl", views.ssh_krl, name="ssh-krl"),
    path("ssh/logins", views.ssh_logins, name="ssh-logins"),
    path("ssh/logins/<str:login>", views.ssh_login_detail, name="ssh-login"),
]

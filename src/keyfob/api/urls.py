from django.urls import URLPattern, path

from keyfob.api import views

app_name = "api"
urlpatterns: list[URLPattern] = [
    path("openapi.json", views.openapi, name="openapi"),
    path("ssh/verify", views.ssh_verify, name="ssh-verify"),
    path("ssh/check", views.ssh_check, name="ssh-check"),
    path("ssh/logins", views.ssh_logins, name="ssh-logins"),
    path("ssh/logins/<str:login>", views.ssh_login_detail, name="ssh-login"),
]

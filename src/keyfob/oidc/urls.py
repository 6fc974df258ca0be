"""The provider's endpoints under /oidc/ (discovery also at the host's root, where relying
parties look for it first)."""

from django.urls import path, re_path
from oauth2_provider import views as dot

from keyfob.oidc import device_views, views

app_name = "oauth2_provider"  # the library reverses its own endpoints by these names

urlpatterns = [
    path("authorize/", views.AuthorizeView.as_view(), name="authorize"),
    path("token/", views.TokenView.as_view(), name="token"),
    path("revoke/", dot.RevokeTokenView.as_view(), name="revoke-token"),
    path("userinfo/", views.UserInfoView.as_view(), name="user-info"),
    path("logout/", views.LogoutView.as_view(), name="rp-initiated-logout"),
    path("jwks/", views.jwks_view, name="jwks-info"),
    re_path(
        r"^\.well-known/openid-configuration$",
        views.DiscoveryView.as_view(),
        name="oidc-connect-discovery-info",
    ),
    path(
        "device/authorize/",
        views.DeviceAuthorizationView.as_view(),
        name="device-authorization",
    ),
    path("device/", device_views.DeviceCodeView.as_view(), name="device"),
    path(
        "device/confirm/<slug:client_id>/<slug:user_code>/",
        device_views.DeviceApproveView.as_view(),
        name="device-confirm",
    ),
    path(
        "device/status/<slug:client_id>/<slug:user_code>/",
        device_views.DeviceDoneView.as_view(),
        name="device-grant-status",
    ),
]

# Account pages (in the site's `account:` namespace).
account_urlpatterns = [
    path("security/apps/<int:pk>/revoke/", views.revoke_app_view, name="revoke-app"),
]

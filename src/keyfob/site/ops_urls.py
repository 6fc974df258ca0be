"""Operations endpoints (health, readiness, metrics); see keyfob.site.ops."""

from django.urls import URLPattern, path

from keyfob.site import ops

urlpatterns: list[URLPattern] = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
]

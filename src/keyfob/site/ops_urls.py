"""Operations endpoints (health, readiness, metrics). Filled in by the production issue."""

urlpatterns: list[object] = []

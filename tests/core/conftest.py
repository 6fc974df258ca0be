"""The API's fixtures, for the shared layer's tests (the root conftest has the rest)."""

from tests.api.conftest import api, linked

__all__ = ["api", "linked"]  # fixtures, by name

"""The portal's and the API's fixtures, for the shared layer's tests."""

from tests.api.conftest import api, linked
from tests.portal.conftest import frozen_time, user, user_with_totp

__all__ = ["api", "frozen_time", "linked", "user", "user_with_totp"]  # fixtures, by name

"""The settings `make bench` serves Keyfob with: Keyfob's own, with floor_urls.py as the
URLconf (Keyfob's URLs, which resolve as in ``keyfob serve``, then POST /api/bench/floor).

Only the bench's server loads this module (``DJANGO_SETTINGS_MODULE=floor_site``, with
bench/ on the path).
"""

from keyfob.site.settings import *  # noqa: F403

ROOT_URLCONF = "floor_urls"

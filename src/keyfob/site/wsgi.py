"""The WSGI application that ``keyfob serve`` (gunicorn) runs."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

from keyfob.site.cli import private_umask

private_umask()  # also when gunicorn is started without `keyfob serve`
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyfob.site.settings")
try:
    application = get_wsgi_application()
except ImproperlyConfigured as exc:  # settings.SettingError: a bad KEYFOB_* value
    print(exc, file=sys.stderr)
    # 4 is what gunicorn's master reads as "App failed to load": it stops instead of
    # starting the worker again and again.
    raise SystemExit(4) from None

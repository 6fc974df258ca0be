"""The Django project: settings, URLs, base templates, and the ``keyfob`` command."""

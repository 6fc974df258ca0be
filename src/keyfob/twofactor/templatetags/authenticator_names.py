"""``authenticator_name``: an app's or key's name as events and notices record it, in the
reader's language (a default name is recorded untranslated: models.shown_name)."""

from __future__ import annotations

from django import template

from keyfob.twofactor.models import shown_name

register = template.Library()
register.filter("authenticator_name", shown_name)

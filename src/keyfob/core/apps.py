from django.apps import AppConfig


class CoreConfig(AppConfig):
    # No pages, no admin: nothing a person reads carries this app's name.
    name = "keyfob.core"
    label = "core"

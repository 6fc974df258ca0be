from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "keyfob.site"
    label = "keyfob_site"
    verbose_name = "Keyfob"

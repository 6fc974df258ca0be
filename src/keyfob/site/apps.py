from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "keyfob.site"
    label = "keyfob_site"
    verbose_name = "Keyfob"

    def ready(self) -> None:
        # Registers the deploy checks (keyfob check --deploy).
        from keyfob.site import checks  # noqa: F401

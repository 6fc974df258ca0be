from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TeamsConfig(AppConfig):
    name = "keyfob.teams"
    label = "teams"
    verbose_name = _("Teams")

    def ready(self) -> None:
        from keyfob.teams import receivers  # noqa: F401  (connects the outbox pass)

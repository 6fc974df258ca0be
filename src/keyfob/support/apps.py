from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SupportConfig(AppConfig):
    name = "keyfob.support"
    label = "support"
    verbose_name = _("Support desk")

    def ready(self) -> None:
        from keyfob.audit.signals import pruning
        from keyfob.support.flows import lostemail

        pruning.connect(lostemail.prune_claims, dispatch_uid="support.prune_lost_email_claims")

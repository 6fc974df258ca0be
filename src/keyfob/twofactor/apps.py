from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TwoFactorConfig(AppConfig):
    name = "keyfob.twofactor"
    label = "twofactor"
    verbose_name = _("Two-factor authentication")

    def ready(self) -> None:
        from keyfob.accounts.signals import credentials_changed
        from keyfob.twofactor import flows

        credentials_changed.connect(
            flows.revoke_on_credentials_change, dispatch_uid="twofactor.revoke_trusted"
        )

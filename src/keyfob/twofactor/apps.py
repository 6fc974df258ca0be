from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TwoFactorConfig(AppConfig):
    name = "keyfob.twofactor"
    label = "twofactor"
    verbose_name = _("Two-factor authentication")

    def ready(self) -> None:
        from keyfob.accounts import proofs
        from keyfob.accounts.signals import credentials_changed
        from keyfob.twofactor import flows

        # A recent authentication needs the second factors the account has (accounts
        # cannot know them: it sits below).
        proofs.set_second_factor_rule(flows.second_factor_rule)

        credentials_changed.connect(
            flows.revoke_on_credentials_change, dispatch_uid="twofactor.revoke_trusted"
        )

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "keyfob.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from keyfob.accounts import flows
        from keyfob.audit.signals import pruning

        pruning.connect(flows.prune_password_resets, dispatch_uid="accounts.prune_resets")
        # Its receiver ends a session's sign-in record when the session signs out.
        from keyfob.accounts import sessions  # noqa: F401

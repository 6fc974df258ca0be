from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OidcConfig(AppConfig):
    name = "keyfob.oidc"
    label = "oidc"
    verbose_name = _("OpenID Connect provider")

    def ready(self) -> None:
        # The "Apps that can sign you in" section of twofactor's Security page is this
        # app's; ending sessions reaches the apps through accounts' signal.
        from keyfob.oidc import receivers  # noqa: F401
        from keyfob.oidc.views import apps_section
        from keyfob.twofactor.views.security import SECURITY_SECTIONS

        if apps_section not in SECURITY_SECTIONS:
            SECURITY_SECTIONS.append(apps_section)

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "keyfob.api"
    label = "api"
    verbose_name = _("API")

    def ready(self) -> None:
        # The SSH logins section of twofactor's Security page is this app's: it is added
        # here, so twofactor (a lower layer) never imports api.
        from keyfob.api.views import ssh_logins_section
        from keyfob.twofactor.views.security import SECURITY_SECTIONS

        if ssh_logins_section not in SECURITY_SECTIONS:
            SECURITY_SECTIONS.append(ssh_logins_section)

        # The SSH logins an owner can grant to team members are this app's links.
        from keyfob.api import flows
        from keyfob.teams.logins import LOGIN_SOURCES

        if not LOGIN_SOURCES:
            LOGIN_SOURCES.append(
                lambda user: [
                    (link.login, link.server) for link in flows.logins_of(user) if link.server
                ]
            )

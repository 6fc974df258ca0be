from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "keyfob.site"
    label = "keyfob_site"
    verbose_name = "Keyfob"

    def ready(self) -> None:
        # Registers the deploy checks (keyfob check --deploy).
        # The doors are siblings that do not import each other: the site, above both,
        # tells the device approval page (oidc) what keyfob-ssh's "ssh" scope gives (api).
        from keyfob.api.views import ssh_certificate_detail
        from keyfob.oidc.device_views import SCOPE_DETAILS
        from keyfob.site import checks  # noqa: F401

        SCOPE_DETAILS["ssh"] = ssh_certificate_detail

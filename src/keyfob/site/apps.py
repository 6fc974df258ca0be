from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "keyfob.site"
    label = "keyfob_site"
    verbose_name = "Keyfob"

    def ready(self) -> None:
        # Registers the deploy checks (keyfob check --deploy).
        # The doors are siblings that do not import each other: the site, above both,
        # tells the device approval page (oidc) what keyfob-ssh's "ssh" scope gives (api).
        # And the certificate endpoint (api) how strongly the session that approved an
        # access token signed in (oidc's Authorization): its strength principals.
        from keyfob.api import views as api_views
        from keyfob.api.views import ssh_certificate_detail
        from keyfob.oidc.device_views import SCOPE_DETAILS
        from keyfob.oidc.flows import token_factors
        from keyfob.site import checks  # noqa: F401

        SCOPE_DETAILS["ssh"] = ssh_certificate_detail
        api_views.TOKEN_FACTORS = token_factors

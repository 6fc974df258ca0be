"""keyfob demo-account: the first time, create a demo account and print how to sign in."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand

from keyfob.accounts.app_settings import app_settings
from keyfob.accounts.models import User

DEMO_EMAIL = "demo@example.com"


class Command(BaseCommand):
    help = "Create the demo account used by `make run`, once, and print its credentials."

    def handle(self, *args: Any, **opts: Any) -> None:
        path = app_settings.data_dir / "demo-account.txt"
        if User.objects.filter(email=DEMO_EMAIL).exists() and path.exists():
            self.stdout.write(f"Demo account (created earlier): {path.read_text().strip()}")
            return
        password = "-".join(secrets.token_hex(3) for _ in range(4))
        user = User.objects.filter(email=DEMO_EMAIL).first() or User(
            email=DEMO_EMAIL, display_name="Demo Customer", phone="+33100000000"
        )
        user.set_password(password)
        user.save()
        line = f"e-mail {DEMO_EMAIL}  password {password}"
        path.write_text(line + "\n")
        path.chmod(0o600)
        self.stdout.write(f"Demo account: {line}")
        self.stdout.write("Sign in at http://127.0.0.1:8000/login/")

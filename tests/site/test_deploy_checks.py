"""`keyfob check --deploy` passes production settings and names each unsafe one.

Settings are read from the environment at start-up, so each case is its own process.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.site.conftest import PRODUCTION, base_env, keyfob

UNSAFE = {
    "debug on": ({"KEYFOB_DEBUG": "1"}, "KEYFOB_DEBUG"),
    "no secret key": ({"KEYFOB_SECRET_KEY": None}, "KEYFOB_SECRET_KEY"),
    "short secret key": ({"KEYFOB_SECRET_KEY": "s3cret-but-short"}, "KEYFOB_SECRET_KEY"),
    "one-letter secret key": ({"KEYFOB_SECRET_KEY": "a" * 80}, "KEYFOB_SECRET_KEY"),
    "django-insecure key": (
        {"KEYFOB_SECRET_KEY": "django-insecure-" + "x1y2z3w4" * 8},
        "KEYFOB_SECRET_KEY",
    ),
    "no allowed hosts": ({"KEYFOB_ALLOWED_HOSTS": ""}, "KEYFOB_ALLOWED_HOSTS"),
    "any host": ({"KEYFOB_ALLOWED_HOSTS": "*"}, "KEYFOB_ALLOWED_HOSTS"),
    "any host among others": (
        {"KEYFOB_ALLOWED_HOSTS": "portal.example.com,*"},
        "KEYFOB_ALLOWED_HOSTS",
    ),
    "https off": ({"KEYFOB_HTTPS": "0"}, "KEYFOB_HTTPS"),
    "malformed key ring": ({"KEYFOB_SECRET_KEYS": "not base64!"}, "KEYFOB_SECRET_KEYS"),
}


def check(tmp_path: Path, **overrides: str | None):  # type: ignore[no-untyped-def]
    """Run the deploy checks with production settings but ``overrides`` (None: unset)."""
    env = base_env(tmp_path, **PRODUCTION)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return keyfob(env, "check", "--deploy")


def test_production_settings_pass(tmp_path: Path) -> None:
    result = check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_each_unsafe_setting_fails_and_is_named(tmp_path: Path) -> None:
    def run(case: str):  # type: ignore[no-untyped-def]
        overrides, _ = UNSAFE[case]
        directory = tmp_path / case.replace(" ", "-")
        directory.mkdir(mode=0o700)  # private, so each case fails for its own setting only
        return case, check(directory, **overrides)

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = dict(pool.map(run, UNSAFE))
    for case, (_, setting) in UNSAFE.items():
        result = results[case]
        assert result.returncode == 1, f"{case}: {result.stdout}{result.stderr}"
        errors = result.stderr.split("WARNINGS:")[0]
        assert setting in errors, f"{case}: {result.stderr}"


def test_a_key_ring_from_the_data_directory_is_a_warning(tmp_path: Path) -> None:
    result = check(tmp_path, KEYFOB_SECRET_KEYS=None)
    assert result.returncode == 0
    assert "keyfob.W001" in result.stderr and "KEYFOB_SECRET_KEYS" in result.stderr


def test_staff_without_a_phishing_resistant_sign_in_is_a_warning(tmp_path: Path) -> None:
    """KEYFOB_STAFF_PHISHING_RESISTANT off is allowed (support may have no keys yet), and
    said at each deploy check; on, the default, it is not."""
    result = check(tmp_path, KEYFOB_STAFF_PHISHING_RESISTANT="0")
    assert result.returncode == 0, result.stderr
    assert "keyfob.W006" in result.stderr
    assert "KEYFOB_STAFF_PHISHING_RESISTANT is off" in result.stderr
    assert "keyfob.W006" not in check(tmp_path).stderr

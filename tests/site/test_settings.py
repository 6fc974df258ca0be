"""Settings: one reader in site/settings.py, and the README's table lists what it reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import keyfob
from keyfob.site import settings as site_settings
from keyfob.site.settings import Environment, SettingError

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(keyfob.__file__).parent


def readme_variables() -> set[str]:
    """The names in the README's settings table (its ``| `KEYFOB_…` |`` rows)."""
    text = (ROOT / "README.md").read_text()
    table = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(KEYFOB_[A-Z0-9_]+)` \|", table, re.MULTILINE))


def test_the_readme_table_lists_exactly_the_variables_read() -> None:
    documented = readme_variables()
    assert len(documented) > 20
    read = set(site_settings.KEYFOB_VARIABLES)
    assert read - documented == set(), "read but not in the README's settings table"
    assert documented - read == set(), "in the README's settings table but never read"


def test_nothing_but_site_settings_reads_the_environment() -> None:
    # keyfob-ssh runs on SSH servers without Django: its own CLI is outside this rule.
    allowed = {SRC / "site" / "settings.py", SRC / "site" / "cli.py", SRC / "site" / "wsgi.py"}
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path not in allowed
        and "ssh" not in path.relative_to(SRC).parts
        and re.search(r"os\.environ|getenv\(", path.read_text())
    ]
    assert offenders == []


def test_cli_and_wsgi_touch_the_environment_only_to_name_the_settings_module() -> None:
    for name in ("cli.py", "wsgi.py"):
        uses = re.findall(r"os\.environ[^\n]*", (SRC / "site" / name).read_text())
        assert uses == ['os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyfob.site.settings")']


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("Yes", True), (" ON ", True), ("0", False), ("false", False),
     ("no", False), ("OFF", False), ("", True)],
)  # fmt: skip
def test_on_off_words(value: str, expected: bool) -> None:
    env = Environment({"KEYFOB_X": value})
    assert env.flag("KEYFOB_X", True) is expected
    assert env.read == {"KEYFOB_X"}


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "y", "t", "-1"])
def test_anything_else_is_not_a_boolean(value: str) -> None:
    with pytest.raises(SettingError) as caught:
        Environment({"KEYFOB_X": value}).flag("KEYFOB_X", False)
    assert str(caught.value) == (
        f"KEYFOB_X: expected one of 1/0, true/false, yes/no, on/off, got {value!r}"
    )


@pytest.mark.parametrize("value", ["thirty", "0", "366", "-1", "+5", "1_0", "3.5", "١٢"])
def test_a_number_is_ascii_digits_within_its_range(value: str) -> None:
    env = Environment({"KEYFOB_TRUST_DAYS": value})
    with pytest.raises(SettingError) as caught:
        env.number("KEYFOB_TRUST_DAYS", 30, 1, 365, "days")
    message = str(caught.value)
    assert message == (
        f"KEYFOB_TRUST_DAYS: expected a whole number of days from 1 to 365, got {value!r}"
    )
    assert "\n" not in message


def test_unset_or_empty_takes_the_default_and_a_good_value_is_typed() -> None:
    env = Environment({"KEYFOB_A": "", "KEYFOB_B": " 7 "})
    assert env.number("KEYFOB_A", 30, 1, 365, "days") == 30
    assert env.number("KEYFOB_B", 30, 1, 365, "days") == 7
    assert env.number("KEYFOB_C", 30, 1, 365, "days") == 30
    assert env.read == {"KEYFOB_A", "KEYFOB_B", "KEYFOB_C"}


def test_a_list_checks_each_item_and_empty_means_none() -> None:
    env = Environment({"KEYFOB_P": "10.0.0.1, 192.0.2.0/24", "KEYFOB_Q": ""})
    check = site_settings._network
    assert env.items("KEYFOB_P", "", check, "CIDRs") == ["10.0.0.1", "192.0.2.0/24"]
    assert env.items("KEYFOB_Q", "127.0.0.1", check, "CIDRs") == []
    assert env.items("KEYFOB_R", "127.0.0.1", check, "CIDRs") == ["127.0.0.1"]
    with pytest.raises(SettingError, match=r"^KEYFOB_S: expected CIDRs, got '10.0.0.1,nope'$"):
        Environment({"KEYFOB_S": "10.0.0.1,nope"}).items("KEYFOB_S", "", check, "CIDRs")

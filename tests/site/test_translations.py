"""Every string a person reads exists in English and French; the catalogue is current."""

from __future__ import annotations

import gettext
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keyfob
from tests.conftest import require_tool

SRC = Path(keyfob.__file__).parent
PO = SRC / "site/locale/fr/LC_MESSAGES/django.po"
MO = PO.with_suffix(".mo")
# Identical in both languages on purpose.
SAME_IN_FRENCH = {"Web", "SSH", "API", "Note"}


def entries(po_text: str) -> list[tuple[str, str | None, list[str]]]:
    """(msgid, msgid_plural, msgstrs) for each entry but the header."""

    def joined(block: str, key: str) -> str | None:
        match = re.search(rf"^{re.escape(key)} ((?:\".*\"\n?)+)", block, re.MULTILINE)
        if not match:
            return None
        # Each quoted piece uses C escapes (\" and \n), which JSON strings read the same way.
        return "".join(json.loads(f'"{piece}"') for piece in re.findall(r'"(.*)"', match.group(1)))

    found = []
    for block in po_text.split("\n\n"):
        msgid = joined(block, "msgid")
        if not msgid:
            continue
        plural = joined(block, "msgid_plural")
        keys = ["msgstr[0]", "msgstr[1]"] if plural else ["msgstr"]
        found.append((msgid, plural, [joined(block, k) or "" for k in keys]))
    return found


def test_every_french_message_is_translated_and_compiled() -> None:
    with MO.open("rb") as f:
        catalogue = gettext.GNUTranslations(f)
    listed = entries(PO.read_text())
    assert len(listed) > 50
    for msgid, plural, msgstrs in listed:
        assert all(msgstrs), f"no French for {msgid!r}"
        if plural:
            assert catalogue.ngettext(msgid, plural, 1) == msgstrs[0]
            assert catalogue.ngettext(msgid, plural, 5) == msgstrs[1]
        else:
            assert catalogue.gettext(msgid) == msgstrs[0], f"{MO.name} is older than the .po"
            assert msgid in SAME_IN_FRENCH or msgstrs[0] != msgid, f"untranslated {msgid!r}"
    assert "#, fuzzy" not in PO.read_text()


def test_the_catalogue_holds_every_string_in_the_code(tmp_path: Path) -> None:
    require_tool("xgettext")
    copy = tmp_path / "src" / "keyfob"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    before = PO.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src"), "KEYFOB_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "keyfob.site.cli", "makemessages", "-l", "fr",
         "--ignore", "ssh/*", "--ignore", "otp/*", "--no-obsolete"],
        cwd=copy, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert PO.read_bytes() == before, "makemessages must work on the copy only"
    fresh = {e[0] for e in entries((copy / "site/locale/fr/LC_MESSAGES/django.po").read_text())}
    assert fresh - {e[0] for e in entries(before.decode())} == set(), "run makemessages"

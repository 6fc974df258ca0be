"""The layers of DESIGN.md reach templates too: import-linter (``make lint``) checks the
Python imports, and this checks what it cannot see, the ``{% load %}`` tags."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

import keyfob

SRC = Path(keyfob.__file__).resolve().parent
# Higher number, lower layer: an app may load the template helpers of its own layer's app
# or of a lower layer (support, api and oidc are siblings that do not use each other's).
LAYER = {
    "site": 0,
    "support": 1,
    "api": 1,
    "oidc": 1,
    "teams": 2,
    "twofactor": 3,
    "accounts": 4,
    "audit": 5,
    "core": 6,
}
DJANGO_LIBRARIES = {"i18n", "l10n", "static", "tz", "cache"}
LOAD = re.compile(r"{%\s*load\s+([^%]+?)\s*%}")


def _owner(library: str) -> str | None:
    found = [p.parent.parent.name for p in SRC.glob(f"*/templatetags/{library}.py")]
    assert len(found) <= 1, f"{library} is defined by {found}"
    return found[0] if found else None


def _loads(app: str) -> list[tuple[Path, str]]:
    return [
        (path, library)
        for path in sorted((SRC / app / "templates").rglob("*"))
        if path.is_file()
        for match in LOAD.finditer(path.read_text())
        # `{% load x y %}` and `{% load a from x %}`: the libraries are the words after `from`
        for library in match.group(1).split(" from ")[-1].split()
    ]


@pytest.mark.parametrize("app", sorted(LAYER))
def test_templates_load_only_their_own_or_lower_layers_helpers(app: str) -> None:
    for path, library in _loads(app):
        if library in DJANGO_LIBRARIES:
            continue
        owner = _owner(library)
        assert owner is not None, f"{path}: unknown template library {library}"
        assert owner == app or LAYER[owner] > LAYER[app], (
            f"{path.relative_to(SRC)} loads {library} of {owner}, a layer above {app}"
        )


def test_audit_templates_load_only_i18n() -> None:
    # The notices' own templates are their app's (notices/<kind>.*); audit keeps the base.
    loads = _loads("audit")
    assert loads, "audit's notice base templates load i18n"
    assert {library for _path, library in loads} == {"i18n"}


def test_every_app_is_in_the_table() -> None:
    apps = {p.parent.name for p in SRC.glob("*/apps.py")}
    assert apps == set(LAYER)


def _imported_roots(package: Path) -> dict[str, set[str]]:
    """Top-level names each module under ``package`` imports (absolute imports, even
    inside functions; relative imports are the package's own)."""
    found: dict[str, set[str]] = {}
    files = [package] if package.is_file() else sorted(package.rglob("*.py"))
    for path in files:
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(SRC))] = names
    return found


# DESIGN.md: keyfob.otp imports the standard library only; keyfob.ssh only keyfob.otp,
# keyfob.qr (and its segno) and the standard library. import-linter lists what is
# forbidden; this says what is allowed, so a new dependency cannot slip past the list.
ALLOWED = {
    "otp": ("keyfob.otp",),
    "ssh": ("keyfob.otp", "keyfob.qr", "keyfob.ssh", "segno"),
    "qr.py": ("keyfob.otp", "segno"),
}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_plain_python_packages_import_only_what_design_allows(package: str) -> None:
    allowed = ALLOWED[package]
    for module, names in _imported_roots(SRC / package).items():
        for name in names:
            root = name.split(".")[0]
            ok = root in sys.stdlib_module_names or any(
                name == prefix or name.startswith(prefix + ".") for prefix in allowed
            )
            assert ok, f"{module} imports {name}: DESIGN.md allows {allowed} and the stdlib"

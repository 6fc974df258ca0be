"""`keyfob.otp` runs on SSH servers without Django: importing it loads the standard
library and keyfob only."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
before = set(sys.modules)
import keyfob.otp
import keyfob.otp.codes, keyfob.otp.errors, keyfob.otp.keys, keyfob.otp.recovery, keyfob.otp.uri
loaded = sorted(set(sys.modules) - before)
stdlib = sys.stdlib_module_names
foreign = [
    name for name in loaded
    if name.split(".")[0] not in stdlib and name.split(".")[0] != "keyfob"
]
print("\\n".join(foreign))
print("LOADED", " ".join(loaded))
"""


def test_importing_otp_loads_only_the_standard_library() -> None:
    # -I: isolated mode, so no sitecustomize or PYTHON* variables add modules of their own;
    # the package is found through sys.path of this interpreter, passed explicitly.
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path[:0] = {sys.path!r}\n{PROBE}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    foreign, _, loaded = out.partition("LOADED")
    assert foreign.split() == []
    names = set(loaded.split())
    assert "keyfob.otp" in names
    for heavy in ("django", "segno", "cryptography", "argon2", "keyfob.qr", "keyfob.site"):
        assert heavy not in names

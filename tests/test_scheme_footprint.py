"""Adding a scheme touches only that scheme's own files (issue 16, item 6): DP-3T, the third scheme, is
named in src/proximity only by its scheme module, its registration, its payload codec, its key-file
format, its matcher and the packages' re-exports. Every other module asks the scheme's record.

Parsed from the source; the check runs on a synthetic tree too, so it is shown to fail.
"""

from __future__ import annotations

import re
from pathlib import Path

import proximity

SRC = Path(proximity.__file__).parent
NAME = re.compile(r"dp[-_ ]?3t", re.IGNORECASE)

HOMES = {
    "schemes/dp3t.py": "the scheme module: crypto, day key, and its key state in a key ring (DP3T_KEYS)",
    "schemes/registry.py": "its registration: the record (DP3T_RECORD) with its entry points",
    "payloads/adverts.py": "its payload codec (Dp3tAdvert, service 0xFD68)",
    "keyfiles/dp3t_json.py": "its key-file format: the exposee list, its export and its upload items",
    "matching/dp3t.py": "its matcher, beside the other schemes' matchers on the shared index",
}
RE_EXPORTS = {
    "__init__.py": "the public API",
    "schemes/__init__.py": "the schemes package",
    "payloads/__init__.py": "the payloads package",
    "matching/__init__.py": "the matching package",
    "keyfiles/__init__.py": "the key-file package",
}


def naming_files(root: Path) -> set[str]:
    """Every source file under ``root`` (relative, ``/``-separated) whose text names DP-3T."""
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.suffix in (".py", ".pyi", ".c", ".h") and NAME.search(path.read_text())
    }


def offenders(root: Path) -> list[str]:
    """Files outside the allowed set that name DP-3T, in code or in comments."""
    return [name for name in sorted(naming_files(root)) if name not in HOMES and name not in RE_EXPORTS]


def test_only_the_schemes_own_files_name_dp3t() -> None:
    assert offenders(SRC) == [], "ask the scheme's record (schemes/registry.py) instead of naming DP-3T"


def test_the_allowed_homes_are_real() -> None:
    # a home that no longer names the scheme is a stale entry: shrink the list
    assert set(HOMES) <= naming_files(SRC)


def test_the_check_fails_on_a_module_that_names_the_scheme(tmp_path: Path) -> None:
    files = {
        "schemes/dp3t.py": "DP3T = 1\n",  # a home
        "__init__.py": "from proximity.schemes.dp3t import DP3T\n",  # a re-export
        "crypto/_native.c": "/* DP-3T EphIDs */\nint x;\n",  # a C comment: an offender
        "keyring/model.py": "def f(ring):\n    return ring.dp3t_key\n",  # code: an offender
        "cli/show.py": '# DP-3T\nprint("day key")\n',  # a comment: an offender
        "sim/run.py": 'SCHEMES = ("gaen", "Dp-3t")\n',  # a literal: an offender
        "log/store.py": "X = 'gaen'\n",  # names nothing
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert offenders(tmp_path) == ["cli/show.py", "crypto/_native.c", "keyring/model.py", "sim/run.py"]

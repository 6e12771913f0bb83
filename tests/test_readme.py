"""The README's Python example runs as printed, so the front page stays true."""

from __future__ import annotations

import re

from conftest import REPO


def test_readme_python_example_runs() -> None:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "the README should show a Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})


def test_readme_names_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    assert "make demo" in text
    assert "make test" in text

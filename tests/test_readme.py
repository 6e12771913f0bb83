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


def test_readme_printed_values_are_what_the_comments_say() -> None:
    # Regression: "# 144 (144, 16)" was printed as 90 (90, 16) (a key made at 09:00 runs to midnight).
    import contextlib
    import io

    text = (REPO / "README.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)[0]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    outputs = printed.getvalue().splitlines()
    prints = [line for line in block.splitlines() if line.startswith("print(")]
    assert len(prints) == len(outputs)
    for line, output in zip(prints, outputs, strict=True):
        comment = line.partition("#")[2].strip()
        if comment[:1].isdigit():  # a comment that shows the output, up to an explaining ":"
            assert output == comment.partition(":")[0].strip(), (line, output)

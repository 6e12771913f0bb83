"""Write the README's leave-one-dataset-out tables from ``proximity evaluate --leave-one-dataset-out --json``.

    python scripts/readme_tables.py build/lodo.json README.md

Each table sits between ``<!-- evaluate:FILE -->`` and ``<!-- /evaluate:FILE -->`` (FILE a scored file or
``pooled``): the estimators' held-out AUC and nDCF at 1.2, 1.8 and 3.0 m, then the default estimator's
paired nDCF differences at 1.8 m with their bootstrap intervals. tests/test_cli_log_evaluate.py checks
the README holds exactly what this renders.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

DISTANCES = (1.2, 1.8, 3.0)
EN_DASH, MINUS = "\u2013", "\u2212"


def _num(value: float, digits: int = 3, signed: bool = False) -> str:
    if not math.isfinite(value):
        return "n/a"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return text.replace("-", MINUS)


def _interval(pair: list[float], signed: bool = False) -> str:
    if not all(math.isfinite(v) for v in pair):
        return "n/a"
    return f"{_num(pair[0], 2, signed)} to {_num(pair[1], 2, signed)}" if signed else (
        f"{_num(pair[0], 2)}{EN_DASH}{_num(pair[1], 2)}")  # fmt: skip


def render(rows: list[dict[str, Any]], file: str) -> str:
    """The markdown for one file's (or the pooled) rows."""
    mine = [r for r in rows if r["file"] == file]
    head = "| estimator | AUC 1.2 m | AUC 1.8 m | AUC 3.0 m | nDCF 1.2 m | nDCF 1.8 m | nDCF 3.0 m "
    head += "| 95% CI, nDCF 1.8 m |"
    lines = [head, "|---|" + "---:|" * 7]
    for r in mine:
        name = f"**{r['name']}** (default)" if r.get("default") else r["name"]
        cells = [_num(r[f"auc_{d}"]) for d in DISTANCES] + [_num(r[f"ndcf_{d}"]) for d in DISTANCES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_interval(r['ndcf_1.8_ci'])} |")
    default = next((r for r in mine if r.get("default") and "versus" in r), None)
    if default is not None:
        lines += [
            "",
            f"Paired differences at 1.8 m, `{default['name']}` minus each (negative favours it):",
            "",
        ]
        lines += ["| versus | nDCF difference | 95% CI | lower in |", "|---|---:|---:|---:|"]
        for v in default["versus"]:
            if v["distance"] != 1.8:
                continue
            share = "n/a" if not math.isfinite(v["share_lower"]) else f"{v['share_lower']:.0%}"
            lines.append(
                f"| {v['name']} | {_num(v['difference'], 3, True)} | "
                f"{_interval([v['low'], v['high']], True)} | {share} |"
            )
    chosen = next((r.get("chosen") for r in mine if r["name"] == "nested-default" and r.get("chosen")), None)
    if chosen:
        picks = chosen if file == "pooled" else {file: chosen[file]}
        lines += [
            "",
            "`nested-default` chose: " + ", ".join(f"{v} (without {k})" for k, v in picks.items()) + ".",
        ]
    return "\n".join(lines)


def main(results: str, readme: str) -> None:
    rows = json.loads(Path(results).read_text(encoding="utf-8"))
    path = Path(readme)
    text = path.read_text(encoding="utf-8")
    for file in dict.fromkeys(r["file"] for r in rows):
        start, end = f"<!-- evaluate:{file} -->", f"<!-- /evaluate:{file} -->"
        if start not in text:
            print(f"README has no section {start}; skipped", file=sys.stderr)
            continue
        section = f"{start}\n{render(rows, file)}\n{end}"
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    path.write_text(text, encoding="utf-8")
    print(f"updated {readme}", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:3])

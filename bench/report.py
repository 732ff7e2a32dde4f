"""Write a benchmark's table into its own section of BENCHMARKS.md, leaving the others alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

from filelock import FileLock

from bench.paths import BENCHMARKS_MD, RESULTS_DIR


def update_benchmarks_section(name: str, body: str, *, path: Path = BENCHMARKS_MD) -> None:
    # Benchmarks running side by side each rewrite their own section: one at a time.
    with FileLock(str(path) + ".lock"):
        _update(name, body, path)


def _update(name: str, body: str, path: Path) -> None:
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + f"\n\n## {name}\n\n{block}\n"
    path.write_text(text)


def publish(name: str, result: dict, table: str) -> None:
    """bench/results/<name>.json, the `name` section of BENCHMARKS.md, and the table on stdout."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    update_benchmarks_section(name, table)
    print(table)

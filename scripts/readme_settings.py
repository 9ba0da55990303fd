"""Refresh the settings tables in README.md from each plugin's `--about --format=markdown`.

    .venv/bin/python scripts/readme_settings.py          # rewrite README.md
    .venv/bin/python scripts/readme_settings.py --check  # exit 1 when README.md is stale

Each table sits between `<!-- settings:<plugin> -->` and `<!-- /settings:<plugin> -->`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PLUGINS = ("tap-okki", "target-twenty", "target-jiandaoyun")


def settings_table(plugin: str) -> str:
    executable = Path(sys.executable).parent / plugin
    about = subprocess.run(
        [str(executable), "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = about.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Setting"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return "\n".join(table)


def refreshed(text: str) -> str:
    for plugin in PLUGINS:
        pattern = re.compile(
            rf"(<!-- settings:{plugin} -->\n)(?:.*?\n)?(<!-- /settings:{plugin} -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise SystemExit(f"README.md has no settings block for {plugin}")
        table = settings_table(plugin)
        text = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    current = README.read_text()
    fresh = refreshed(current)
    if args.check:
        sys.exit(0 if fresh == current else "README.md settings tables are stale")
    README.write_text(fresh)


if __name__ == "__main__":
    main()

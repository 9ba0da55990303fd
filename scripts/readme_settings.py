"""Refresh the settings tables in the READMEs from each plugin's `--about --format=markdown`.

    .venv/bin/python scripts/readme_settings.py          # rewrite the READMEs
    .venv/bin/python scripts/readme_settings.py --check  # exit 1 when one is stale

Each table sits between `<!-- settings:<plugin> -->` and `<!-- /settings:<plugin> -->`: in
README.md every plugin's, in each target's own README that target's.
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
# Each README and the plugins whose tables it holds.
READMES = {
    README: PLUGINS,
    ROOT / "target_twenty" / "README.md": ("target-twenty",),
    ROOT / "target_jiandaoyun" / "README.md": ("target-jiandaoyun",),
}


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


def refreshed(text: str, plugins: tuple[str, ...] = PLUGINS) -> str:
    for plugin in plugins:
        pattern = re.compile(
            rf"(<!-- settings:{plugin} -->\n)(?:.*?\n)?(<!-- /settings:{plugin} -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise SystemExit(f"a README has no settings block for {plugin}")
        table = settings_table(plugin)
        text = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for path, plugins in READMES.items():
        current = path.read_text()
        fresh = refreshed(current, plugins)
        if fresh != current:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(fresh)
    if args.check and stale:
        sys.exit(f"settings tables are stale in {stale}")


if __name__ == "__main__":
    main()

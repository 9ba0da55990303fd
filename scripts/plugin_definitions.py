"""Write the Meltano plugin definitions in plugins/ from each plugin's `--about`.

Another Meltano project adds a plugin with one command, from a path or a URL:

    meltano add --plugin-type loader target-twenty --from-ref plugins/loaders/target-twenty.yml

The files follow Meltano Hub's plugin definitions (label, description, capabilities, settings
with kind, label, `sensitive`, options and defaults, docs); `tests/test_project_files.py` fails
when they drift from the plugins. Numbers with a fraction are `kind: string`, as in our
meltano.yml (`plugin_settings.kind`: Meltano 4.4.1 cannot pass a `decimal` from `.env`).

    .venv/bin/python scripts/plugin_definitions.py          # rewrite plugins/
    .venv/bin/python scripts/plugin_definitions.py --check  # exit 1 when plugins/ is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plugin_settings import OWN_PLUGINS, about, meltano_settings, required_settings

ROOT = Path(__file__).resolve().parent.parent
DIRECTORY = ROOT / "plugins"
# The distribution that ships all three plugins (pyproject.toml); a project that cannot reach
# it on its package index points pip at a wheel or a checkout (README, "Add to your own
# Meltano project").
PIP_URL = "okki-crm-sync"
FACTS: dict[str, dict[str, Any]] = {
    "tap-okki": {
        "type": "extractors",
        "label": "OKKI (Xiaoman) CRM",
        "docs": "README.md#tap-okki",
        "keywords": ["crm", "okki", "xiaoman"],
    },
    "target-twenty": {
        "type": "loaders",
        "label": "Twenty CRM",
        "docs": "target_twenty/README.md",
        "keywords": ["crm", "twenty"],
    },
    "target-jiandaoyun": {
        "type": "loaders",
        "label": "Jiandaoyun (简道云)",
        "docs": "target_jiandaoyun/README.md",
        "keywords": ["jiandaoyun", "forms", "no-code"],
    },
}
WORDS = {"api": "API", "url": "URL", "id": "ID", "http": "HTTP", "jsonl": "JSONL"}


def label(name: str) -> str:
    """`base_url` → `Base URL`."""
    return " ".join(WORDS.get(w, w.capitalize()) for w in name.split("_"))


def definition(plugin: str) -> dict[str, Any]:
    info = about(plugin)
    facts = FACTS[plugin]
    settings = []
    for setting in meltano_settings(plugin):
        settings.append({"name": setting["name"], "label": label(setting["name"]), **setting})
    return {
        "name": plugin,
        "namespace": plugin.replace("-", "_"),
        "variant": "okki-crm-sync",
        "label": facts["label"],
        "description": info["description"],
        "docs": facts["docs"],
        "keywords": facts["keywords"],
        "pip_url": PIP_URL,
        "executable": plugin,
        "python": None,
        "capabilities": info["capabilities"],
        "settings_group_validation": [required_settings(plugin)],
        "settings": settings,
    }


def path_of(plugin: str) -> Path:
    return DIRECTORY / FACTS[plugin]["type"] / f"{plugin}.yml"


def text_of(plugin: str) -> str:
    body = {k: v for k, v in definition(plugin).items() if v is not None}
    header = (
        f"# {plugin}: a Meltano plugin definition (Hub format), made by "
        "scripts/plugin_definitions.py from `--about`.\n"
        f"#   meltano add --plugin-type {FACTS[plugin]['type'][:-1]} {plugin} --from-ref "
        f"<this file's path or URL>\n"
    )
    return header + yaml.safe_dump(body, allow_unicode=True, sort_keys=False, width=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for plugin in OWN_PLUGINS:
        path, text = path_of(plugin), text_of(plugin)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if stale:
        sys.exit(f"stale plugin definitions: {stale}; run scripts/plugin_definitions.py")


if __name__ == "__main__":
    main()

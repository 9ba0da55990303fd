"""meltano.yml and .env.example mirror what each plugin declares in its config_jsonschema;
dependencies are locked and above their published fixes."""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_PACKAGES = ("tap_okki", "target_twenty", "target_jiandaoyun", "connector_kit", "crm_sandbox")
sys.path.insert(0, str(ROOT / "scripts"))

from plugin_settings import OWN_PLUGINS, env_lines, meltano_settings  # noqa: E402


def meltano_plugin(name: str) -> dict:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    plugins = project["plugins"]["extractors"] + project["plugins"]["loaders"]
    return next(p for p in plugins if p["name"] == name)


@pytest.mark.parametrize("plugin", OWN_PLUGINS)
def test_meltano_yml_declares_every_setting_as_the_plugin_does(plugin: str) -> None:
    declared = {s["name"]: s for s in meltano_plugin(plugin)["settings"]}
    expected = {s["name"]: s for s in meltano_settings(plugin)}
    assert list(declared) == list(expected), "run scripts/plugin_settings.py and update"
    for name, setting in expected.items():
        assert declared[name].get("kind") == setting["kind"], name
        assert declared[name].get("sensitive", False) == setting.get("sensitive", False), name
        assert declared[name].get("value") == setting.get("value"), name
        assert declared[name].get("description"), f"{plugin}.{name} has no description"


@pytest.mark.parametrize("plugin", OWN_PLUGINS)
def test_env_example_lists_every_secret_and_meltano_yml_holds_none(plugin: str) -> None:
    env_example = (ROOT / ".env.example").read_text().splitlines()
    for line in env_lines(plugin):
        assert line in env_example
    project = (ROOT / "meltano.yml").read_text()
    prod = next(e for e in yaml.safe_load(project)["environments"] if e["name"] == "prod")
    secrets = [s["name"] for s in meltano_settings(plugin) if s.get("sensitive")]
    prod_configs = prod["config"]["plugins"]
    for kind in prod_configs.values():
        for entry in kind:
            assert not set(entry.get("config", {})) & set(secrets), f"a secret in prod: {entry}"


def test_meltano_yml_turns_usage_statistics_off() -> None:
    assert yaml.safe_load((ROOT / "meltano.yml").read_text())["send_anonymous_usage_stats"] is False


@pytest.mark.parametrize("plugin", OWN_PLUGINS)
def test_plugin_definition_file_matches_what_the_plugin_declares(plugin: str) -> None:
    from plugin_definitions import path_of, text_of

    assert path_of(plugin).read_text(encoding="utf-8") == text_of(plugin), (
        "run scripts/plugin_definitions.py"
    )
    definition = yaml.safe_load(path_of(plugin).read_text(encoding="utf-8"))
    declared = meltano_plugin(plugin)
    assert set(definition["capabilities"]) == set(declared["capabilities"])
    assert [s["name"] for s in definition["settings"]] == [s["name"] for s in declared["settings"]]
    assert all(s["label"] and s["description"] for s in definition["settings"])


def test_readme_settings_tables_match_the_plugins() -> None:
    from readme_settings import READMES, refreshed

    for path, plugins in READMES.items():
        current = path.read_text()
        assert refreshed(current, plugins) == current, f"{path}: run scripts/readme_settings.py"


# Dependencies (issue 18, item 8) ---------------------------------------------------------------
# Dependencies we call directly: the last version with a published vulnerability, the first
# that fixes them all, and the advisories.
FIXED = {
    "urllib3": ("2.6.3", "2.7.0", "CVE-2025-66418/66471, CVE-2026-21441, CVE-2026-44431/44432"),
    "simpleeval": ("1.0.4", "1.0.5", "CVE-2026-32640"),
}


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in [*project["dependencies"], *extras]]


def lock(name: str) -> dict[str, Version]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, _, version = line.partition("==")
            pins[canonicalize_name(package)] = Version(version)
    return pins


@pytest.mark.parametrize("package", FIXED)
def test_dependency_floors_admit_no_version_with_a_published_vulnerability(package: str) -> None:
    vulnerable, fixed, advisories = FIXED[package]
    requirement = next(r for r in requirements() if r.name == package)
    assert not requirement.specifier.contains(vulnerable), f"{requirement}: {advisories}"
    assert requirement.specifier.contains(fixed)


def test_the_lock_pins_every_dependency_within_its_requirement() -> None:
    pins = lock("constraints.txt")
    for requirement in requirements():
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # e.g. tomli, for Python 3.10 only
        if requirement.name == "okki-crm-sync":
            continue  # the project's own extras (`[sandbox]` in `[test]`)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in constraints.txt: run `make lock`"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]}: `make lock`"
    assert lock("constraints-meltano.txt")[canonicalize_name("meltano")] == Version(
        re.search(r"MELTANO_VERSION := (\S+)", (ROOT / "Makefile").read_text())[1]
    )


def test_make_and_meltano_install_from_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert makefile.count("-c $(LOCK)") == 2  # the test and the benchmark environments
    assert "-c $(MELTANO_LOCK)" in makefile
    for plugin in OWN_PLUGINS:
        assert meltano_plugin(plugin)["pip_url"] == "-e . -c constraints.txt", plugin


def test_the_environment_running_the_tests_is_the_lock() -> None:
    for name, pinned in lock("constraints.txt").items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue  # the benchmarks' extras, not installed for the tests
        assert installed == pinned, f"{name} {installed} installed, {pinned} locked: make install"


def test_code_cites_only_documents_of_the_repository() -> None:
    """API facts the code relies on live in docs/api/; no line points outside the repository."""
    outside = re.compile(r"\.\./shared|shared/api|singer-notes\.md|INVARIANTS\.md|\bcontract §")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in plugin_sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert not offenders, offenders
    cited = {path.name for path in (ROOT / "docs" / "api").glob("*.md")}
    for path in plugin_sources():
        for name in re.findall(r"docs/api/([a-z]+\.md)", path.read_text(encoding="utf-8")):
            assert name in cited, f"{path.relative_to(ROOT)} cites docs/api/{name}"


def test_no_module_of_the_plugins_imports_one_that_imports_it_back() -> None:
    """No import cycles, type-only imports included: each room is handed what it needs."""
    import ast
    import graphlib

    graph: dict[str, set[str]] = {}
    for path in plugin_sources():
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        ours = {m for m in imported if m.split(".")[0] in PLUGIN_PACKAGES and m != module}
        graph[module] = ours
    graph = {m: {i for i in imports if i in graph} for m, imports in graph.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")


def plugin_sources() -> list[Path]:
    """The Python files of the plugins, the kit and the sandboxes."""
    return [path for package in PLUGIN_PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]

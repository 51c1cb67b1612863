"""docs/architecture.md's recipes stay true: each "### Add …" recipe lists the files a change of that
kind touches, and the tests here fail when the package grows a place the recipe does not name
(a registry keyed by spec type, a peer tool's table, an output format, a subcommand's table)."""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def recipe(title: str) -> str:
    """The text of the recipe headed ``### {title}``."""
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^##|\Z)", ARCHITECTURE, re.M | re.S)
    assert match, f"docs/architecture.md has no recipe '### {title}'"
    return match.group(1)


def named_paths(text: str) -> list[str]:
    """Every `path/with/a/slash` or `file.py` a recipe names in backticks."""
    return [p for p in re.findall(r"`([\w./-]+)`", text) if "/" in p and not p.endswith("/")]


RECIPES = ("Add a spec type", "Add an output format", "Add a peer tool", "Add a subcommand")


@pytest.mark.parametrize("title", RECIPES)
def test_every_file_a_recipe_names_exists(title: str) -> None:
    paths = named_paths(recipe(title))
    assert paths, title
    missing = [p for p in paths if not (ROOT / p.split(":")[0]).exists()]
    assert missing == []


def _module_level_registries() -> dict[str, str]:
    """Every SpecRegistry instance bound at module level anywhere in the package: name → module path."""
    found = {}
    for path in sorted((ROOT / "costlab").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Call) \
                    and ast.unparse(node.value.func) == "SpecRegistry":
                found[node.target.id] = path.relative_to(ROOT).as_posix()  # type: ignore[union-attr]
    return found


def test_the_spec_type_recipe_names_every_registry_keyed_by_spec_type() -> None:
    text = recipe("Add a spec type")
    registries = _module_level_registries()
    assert len(registries) >= 5
    for name, path in registries.items():
        assert re.search(rf"`@?{name}\b", text) and f"`{path}`" in text, f"the recipe does not name {name} ({path})"


def test_every_peer_tool_has_its_rules_its_runner_and_its_pin() -> None:
    text = recipe("Add a peer tool")
    from costlab.analyses.conventions import CONVENTIONS
    from costlab.core.tools import CONVENTION_TOOLS, PEER_TOOLS
    from costlab.torch_bridge.peers import PEERS

    assert list(PEERS) == list(PEER_TOOLS) and set(PEER_TOOLS) <= set(CONVENTION_TOOLS)
    assert list(CONVENTIONS) == list(CONVENTION_TOOLS)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pinned = {re.split(r"[=<>]", requirement)[0] for requirement in extras["optional-dependencies"]["test"]}
    installed_anyway = {re.split(r"[=<>]", requirement)[0] for requirement in extras["dependencies"]}
    for name in PEER_TOOLS:
        package = PEERS[name].package
        assert package in pinned | installed_anyway, f"{name}: {package} is not pinned in the [test] extra"
        module = "pytorch" if name == "torch" else name
        assert (ROOT / "costlab" / "analyses" / "conventions" / f"{module}.py").exists(), name
    for path in ("costlab/core/tools.py", "costlab/torch_bridge/peers.py", "costlab/analyses/conventions/registry.py",
                 "pyproject.toml", "tests/test_conventions_real.py"):
        assert f"`{path}`" in text


def test_the_subcommand_recipe_names_the_table_the_parser_is_built_from() -> None:
    text = recipe("Add a subcommand")
    cli = importlib.import_module("costlab.app.cli")
    parser = cli.build_parser()
    (action,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert list(action.choices) == [command.name for command in cli.COMMANDS]
    for needle in ("`COMMANDS`", "`costlab/app/cli.py`", "`docs/cli.md`", "`tests/test_docs.py`"):
        assert needle in text

"""The optional extras of pyproject.toml and the one message that names a missing one.

Which package each extra brings and the command that installs it are stated here once; the
message quotes the README's own command (tests/test_extras.py holds them equal). Whether a
package is installed is asked of :func:`importlib.util.find_spec`, which imports nothing, so a
missing extra is reported before torch (or anything heavy) is imported.
"""

from __future__ import annotations

import importlib.util

#: extra name → the top-level module it installs (what a target or option needs to import).
EXTRA_MODULES: dict[str, str] = {
    "vision": "torchvision",
    "hf": "transformers",
    "plot": "matplotlib",
}


def install_command(extra: str) -> str:
    """The README's command for an extra, quoted as a shell needs it: ``pip install -e ".[vision]"``."""
    return f'pip install -e ".[{extra}]"'


def installed(module: str) -> bool:
    """Whether the top-level ``module`` can be imported (found on sys.path; nothing is imported)."""
    try:
        return importlib.util.find_spec(module.partition(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def extra_for(module: str) -> str | None:
    """The extra that installs ``module`` (a dotted name: its top level decides), or None."""
    top = module.partition(".")[0]
    return next((extra for extra, name in EXTRA_MODULES.items() if name == top), None)


def missing_message(extra: str, needed_by: str) -> str:
    """'torchvision.models:resnet50 needs torchvision, which is not installed: pip install -e ".[vision]"'."""
    return f"{needed_by} needs {EXTRA_MODULES[extra]}, which is not installed: {install_command(extra)}"


def missing_extra(module: str, needed_by: str) -> str | None:
    """The message for ``module`` when it belongs to an extra that is not installed, else None."""
    extra = extra_for(module)
    if extra is None or installed(EXTRA_MODULES[extra]):
        return None
    return missing_message(extra, needed_by)

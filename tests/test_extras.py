"""Optional extras: the missing-extra message quotes the README's command, is given before torch is
imported, and the [vision] extra pairs torchvision with the torch the README installs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from costlab.core.extras import EXTRA_MODULES, install_command, missing_extra

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("extra", sorted(EXTRA_MODULES))
def test_message_command_is_the_readmes(extra: str) -> None:
    command = install_command(extra)
    assert command == f'pip install -e ".[{extra}]"'
    # the README names the first extra with the whole command and the others by their quoted part
    assert command in README or f'`".[{extra}]"`' in README
    assert re.search(rf'^{extra} = \[', PYPROJECT, re.M), f"pyproject.toml has no [{extra}] extra"


def test_every_extra_module_belongs_to_its_extra_in_pyproject() -> None:
    for extra, module in EXTRA_MODULES.items():
        line = re.search(rf'^{extra} = \[(.*)\]', PYPROJECT, re.M)
        assert line and module in line.group(1)


def test_vision_extra_pairs_with_the_readmes_torch() -> None:
    """torchvision 0.(N + 15) is released with torch 2.N and pins it exactly (0.16 ↔ 2.1 … 0.28 ↔ 2.13)."""
    torch_minor = int(re.search(r"pip install torch==2\.(\d+)\.\d+", README).group(1))
    pin = re.search(r'^vision = \["torchvision==0\.(\d+)\.\*"\]', PYPROJECT, re.M)
    assert pin, "the [vision] extra must bound torchvision to one release"
    assert int(pin.group(1)) == torch_minor + 15


def test_missing_extra_is_none_for_other_modules() -> None:
    assert missing_extra("costlab.core.zoo", "x") is None
    assert missing_extra("json", "x") is None


def test_missing_torchvision_is_reported_before_torch_is_imported() -> None:
    """A torchvision target without torchvision: one line, the README's command, torch never imported."""
    code = (
        "import sys; sys.modules['torchvision'] = None\n"  # torchvision blocked, as if not installed
        "import io; from costlab.app.cli import main\n"
        "err = io.StringIO()\n"
        "rc = main(['analyze', 'torchvision.models:resnet50', '--input', '3x224x224'], stdout=io.StringIO(), stderr=err)\n"
        "print(rc); print(err.getvalue(), end=''); print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    rc, message, torch_imported = done.stdout.splitlines()
    assert rc == "2"
    assert message == ("costlab: error: torchvision.models:resnet50 needs torchvision, which is not installed: "
                       + install_command("vision"))
    assert torch_imported == "False"

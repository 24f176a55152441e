"""The architecture as a contract: serving -> models -> features, and no import cycle inside a package.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and are checked by import-linter, the
tool large Python codebases use for this. The second and third tests prove the check bites: the same
contracts, run over a throwaway copy of the layout, fail on an upward import and on a cycle.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(config: Path, cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(config), "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_project_keeps_its_import_contracts():
    result = _lint(ROOT / "pyproject.toml", ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _toy_project(tmp_path: Path, imports: dict[str, str]) -> Path:
    """The three packages with two modules each, importing as ``imports`` says, and our contracts."""
    for package in ("features", "models", "serving"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        for module in ("a", "b"):
            name = f"{package}.{module}"
            (tmp_path / package / f"{module}.py").write_text(imports.get(name, "") + "\n")
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    lines = ["[importlinter]\nroot_packages =\n    " + "\n    ".join(contracts["root_packages"])]
    for i, contract in enumerate(contracts["contracts"]):
        lines.append(f"[importlinter:contract:{i}]")
        for key, value in contract.items():
            lines.append(f"{key} = " + ("\n    " + "\n    ".join(value) if isinstance(value, list) else value))
    config = tmp_path / ".importlinter"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.mark.parametrize(
    ("imports", "broken"),
    [
        ({"features.a": "import serving.b"}, "layers"),  # an upward import
        ({"models.a": "import models.b", "models.b": "import models.a"}, "no import cycle"),
        ({"serving.a": "import serving.b", "serving.b": "import models.a", "models.a": "import features.a"}, None),
    ],
)
def test_the_contracts_fail_on_an_upward_import_or_a_cycle(tmp_path, imports, broken):
    config = _toy_project(tmp_path, imports)
    result = _lint(config, tmp_path, tmp_path)
    if broken is None:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode != 0
        assert broken in result.stdout.split("Broken contracts", 1)[-1], result.stdout

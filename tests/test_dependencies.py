"""Every third-party module the package, tests, benchmarks and examples import is a declared dependency.

A fresh machine has only what pyproject.toml declares; a module installed by hand on a developer's machine
would otherwise hide until a newcomer runs the README's commands.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("crisis", "tests", "bench", "examples")
# Modules whose distribution has another name, for modules not installed in this environment (bench extras).
DISTRIBUTION_OF = {"yaml": "pyyaml", "dateutil": "python-dateutil", "broadcaster": "broadcaster"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {_norm(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in specs}


def imported() -> dict[str, set[str]]:
    """Top-level module name -> files importing it (absolute imports only)."""
    found: dict[str, set[str]] = {}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(path.relative_to(ROOT).as_posix())
    return found


def test_every_third_party_import_is_declared() -> None:
    local = {p.name for p in ROOT.iterdir() if p.is_dir()} | {"__future__", "conftest"}
    # Scripts import their siblings (bench/support.py) by module name.
    local |= {p.stem for folder in FOLDERS for p in (ROOT / folder).glob("*.py")}
    owners = packages_distributions()
    wanted = declared()
    missing = {}
    for module, files in imported().items():
        if module in sys.stdlib_module_names or module in local:
            continue
        dists = {_norm(d) for d in owners.get(module, [])} or {_norm(DISTRIBUTION_OF.get(module, module))}
        if not dists & wanted:
            missing[module] = sorted(files)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"

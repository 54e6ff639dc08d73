"""The architecture, kept honest: the domain does no I/O, and only the Kafka adapters import aiokafka.

The domain imports the standard library, pydantic and orjson (a pure serialisation library: the hash
chain's canonical JSON, crisis.domain.jsonvalues), nothing that reaches a network, a process or a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "crisis"
IO_LIBRARIES = {
    "aiokafka",
    "websockets",
    "fastapi",
    "starlette",
    "httpx",
    "uvicorn",
    "socket",
    "asyncio",
    "structlog",
    "subprocess",
    "cloudevents",
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_imports_only_the_standard_library_and_pydantic() -> None:
    for path in (PACKAGE / "domain").rglob("*.py"):
        leaked = imports(path) & IO_LIBRARIES
        assert not leaked, f"{path.name} imports {leaked}"


def test_only_the_kafka_adapter_imports_aiokafka() -> None:
    users = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if "aiokafka" in imports(p)}
    assert users <= {"bus/kafka.py", "bus/kafka_keys.py", "broker.py"}, users


def test_interop_mappings_are_pure() -> None:
    """Format mappings take plain values: no web framework, broker client or socket."""
    for path in (PACKAGE / "interop").rglob("*.py"):
        leaked = imports(path) & (IO_LIBRARIES - {"structlog"})
        assert not leaked, f"{path.name} imports {leaked}"

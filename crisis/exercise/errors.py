"""Scenario errors a controller can act on: file, line and field path for every problem."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ScenarioError(Exception):
    """The scenario cannot run; raised before anything is published."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
        super().__init__(f"invalid scenario ({count}):\n" + "\n".join(f"  {i}" for i in issues))


def dotted(loc: tuple[int | str, ...]) -> str:
    """`timeline[3].share.indicators[0].value` from a pydantic loc."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_branch(part):
            continue  # a union branch or validator name, not a field the author wrote
        else:
            out += f".{part}" if out else part
    return out


def _is_branch(part: str) -> bool:
    return "[" in part or part in ("str", "int", "float", "list", "dict", "bool", "literal")

"""YAML loaded with the line of every node, so a validation error can point at the line to fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Located:
    """A parsed YAML document and the 1-based line of each mapping key and sequence item."""

    data: Any
    lines: dict[Path_, int]

    def line_of(self, loc: tuple[int | str, ...]) -> int | None:
        """The line of the deepest node on `loc`; parts that are not nodes (union branches) are skipped."""
        path: Path_ = ()
        best = self.lines.get(path)
        for part in loc:
            candidate = (*path, part)
            if candidate in self.lines:
                path = candidate
                best = self.lines[path]
        return best


def load(text: str) -> Located:
    """Parse one YAML document; raises yaml.YAMLError (which carries its own mark) on bad syntax."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    data = yaml.safe_load(text)
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return Located(data=data, lines=lines)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark)
            # The key's line, not the value's: a nested block value starts on the next line.
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines)

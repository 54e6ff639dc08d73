"""YAML loaded with the line of every node, so a validation error can point at the line to fix.

Aliases are allowed within a budget: the document, with every alias expanded, may hold at most
`MAX_NODES` nodes. A "billion laughs" file of a kilobyte is refused after composing its hundred nodes,
before anything is built from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import yaml

Path_ = tuple[str | int, ...]
MAX_NODES: Final = 100_000


class YamlRefused(Exception):
    """A document too large once its aliases are expanded, self-referring, or nested too deeply."""


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


def load(text: str, max_nodes: int = MAX_NODES) -> Located:
    """Parse one YAML document; yaml.YAMLError (with its mark) on bad syntax, YamlRefused over budget."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(data=None, lines={})
        check_budget(node, max_nodes)
        data = loader.construct_document(node)
        lines: dict[Path_, int] = {}
        _walk(node, (), lines)
    except RecursionError:
        raise YamlRefused("nested too deeply") from None
    finally:
        loader.dispose()
    return Located(data=data, lines=lines)


def check_budget(root: yaml.Node, max_nodes: int) -> None:
    """Refuse a graph whose expansion exceeds `max_nodes` or that contains itself, in time linear in it."""
    sizes: dict[int, int] = {}  # expanded size of each distinct node, shared by all its aliases
    started: set[int] = set()
    todo: list[tuple[yaml.Node, bool]] = [(root, False)]
    while todo:
        node, children_done = todo.pop()
        key = id(node)
        if children_done:
            started.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > max_nodes:
                raise YamlRefused(f"its anchors and aliases expand to more than {max_nodes} nodes")
            continue
        if key in sizes:
            continue
        if key in started:
            raise YamlRefused("an alias refers to a node that contains it")
        started.add(key)
        todo.append((node, True))
        todo.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield key_node
            yield value_node
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


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

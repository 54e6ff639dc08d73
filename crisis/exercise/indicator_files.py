"""Indicators a share reads from a file or generates; every item checked with the API's own rules."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from crisis.domain.enums import IndicatorKind
from crisis.domain.indicators import HEX_LENGTHS, IndicatorIn
from crisis.exercise import yamlmarks
from crisis.exercise.errors import Issue, dotted
from crisis.exercise.files import FilePolicy, Refused
from crisis.exercise.sampling import rng_for
from crisis.exercise.scenario import Generate

Payload = dict[str, Any]


def payload(item: IndicatorIn) -> Payload:
    """The JSON the API takes for one indicator."""
    return item.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {"kind": item.kind.value}


def read_file(files: FilePolicy, base: Path, shown: str) -> tuple[list[Payload], list[Issue]]:
    """Items of a JSON-lines, CSV, or YAML/JSON-list file named `shown` in the scenario's folder `base`.

    Issues name the file and the line, and never quote it.
    """
    try:
        text = files.read(base, shown, "indicators file")
    except Refused as exc:
        return [], [Issue(shown, None, "", str(exc))]
    suffix = Path(shown).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = _jsonl(text, shown)
    elif suffix == ".csv":
        rows = _csv(text)
    else:
        rows = _yaml(text, shown)
    items: list[Payload] = []
    issues: list[Issue] = []
    for line, raw, loc_lines in rows:
        if isinstance(raw, Issue):
            issues.append(raw)
            continue
        try:
            items.append(payload(IndicatorIn.model_validate(raw)))
        except ValidationError as exc:
            for e in exc.errors():
                at = loc_lines.line_of(e["loc"]) if loc_lines else line
                issues.append(Issue(shown, at or line, dotted(e["loc"]), e["msg"]))
    return items, issues


Row = tuple[int, "Any | Issue", "yamlmarks.Located | None"]


def _jsonl(text: str, shown: str) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rows.append((number, json.loads(line), None))
        except json.JSONDecodeError as exc:
            rows.append((number, Issue(shown, number, "", f"not JSON: {exc.msg}"), None))
    return rows


def _csv(text: str) -> list[Row]:
    rows: list[Row] = []
    for number, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in cells]
        if not cells or not cells[0] or cells[0].startswith("#") or cells[0].lower() == "kind":
            continue
        raw: dict[str, Any] = {"kind": cells[0], "value": cells[1] if len(cells) > 1 else None}
        if len(cells) > 2 and cells[2]:
            raw["quality"] = int(cells[2]) if cells[2].isdigit() else cells[2]
        rows.append((number, raw, None))
    return rows


def _yaml(text: str, shown: str) -> list[Row]:
    try:
        located = yamlmarks.load(text)
    except yamlmarks.YamlRefused as exc:
        return [(0, Issue(shown, None, "", f"refused: {exc}"), None)]
    except yaml.YAMLError as exc:
        # The problem and its line, never the snippet of the file that PyYAML's own message quotes.
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        return [(0, Issue(shown, mark.line + 1 if mark else None, "", f"not YAML/JSON: {problem}"), None)]
    data = located.data
    root: tuple[str, ...] = ()
    if isinstance(data, dict) and "indicators" in data:
        data, root = data["indicators"], ("indicators",)
    if not isinstance(data, list):
        return [(1, Issue(shown, 1, "", "expected a list of indicators"), None)]
    rows: list[Row] = []
    for index, raw in enumerate(data):
        sub = {
            loc[len(root) + 1 :]: n
            for loc, n in located.lines.items()
            if loc[: len(root) + 1] == (*root, index)
        }
        rows.append((located.lines.get((*root, index), 0), raw, yamlmarks.Located(raw, sub)))
    return rows


def generated(seed: int, where: str, spec: Generate) -> list[Payload]:
    """`count` made-up indicators of `kind`, the same for the same seed and step."""
    rng = rng_for(seed, "generate", where, spec.kind.value)
    out: list[Payload] = []
    for n in range(spec.count):
        digest = f"{rng.getrandbits(256):064x}"
        if spec.kind is IndicatorKind.URL:
            out.append({"kind": "url", "value": f"https://video.example/watch/{digest[:16]}?n={n}"})
        elif spec.kind in HEX_LENGTHS:
            value = (digest + f"{rng.getrandbits(256):064x}")[: HEX_LENGTHS[spec.kind]]
            item: Payload = {"kind": spec.kind.value, "value": value}
            if spec.kind is IndicatorKind.PDQ:
                item["quality"] = rng.randint(60, 100)
            out.append(item)
        else:  # tmk and vpdq travel by reference to their hash file
            out.append(
                {"kind": spec.kind.value, "blob": {"sha256": digest, "size": rng.randint(4_096, 4_000_000)}}
            )
    return out

"""Read a scenario file: YAML with line marks, the pydantic model, cross-field rules, indicator files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from crisis.exercise import yamlmarks
from crisis.exercise.checks import check
from crisis.exercise.errors import Issue, ScenarioError, dotted
from crisis.exercise.files import MAX_SCENARIO_BYTES, FilePolicy, Refused, read_text
from crisis.exercise.indicator_files import Payload, generated, payload, read_file
from crisis.exercise.scenario import Scenario


@dataclass(frozen=True)
class Loaded:
    """A valid scenario, where it came from, and every share's indicators ready to post."""

    scenario: Scenario
    path: Path
    shares: dict[int, list[Payload]]
    files: FilePolicy = field(default_factory=FilePolicy)

    @property
    def base(self) -> Path:
        return self.path.parent


def load(path: Path, files: FilePolicy | None = None) -> Loaded:
    """The scenario in `path`, or ScenarioError listing every problem with its file, line and field."""
    try:
        text = read_text(path, MAX_SCENARIO_BYTES, "scenario file")
    except Refused as exc:
        raise ScenarioError([Issue(str(path), None, "", str(exc))]) from None
    return parse(text, path, files)


def parse(text: str, path: Path, files: FilePolicy | None = None) -> Loaded:
    """Like load, for text already read (`path` names it in messages and anchors relative files)."""
    shown = str(path)
    files = files or FilePolicy()
    located = _yaml(text, shown)
    try:
        scenario = Scenario.model_validate(located.data)
    except ValidationError as exc:
        issues = [
            Issue(shown, located.line_of(e["loc"]), dotted(e["loc"]), _message(e)) for e in exc.errors()
        ]
        raise ScenarioError(issues) from None
    issues = [Issue(shown, located.line_of(loc), dotted(loc), msg) for loc, msg in check(scenario)]
    shares: dict[int, list[Payload]] = {}
    for index, step in enumerate(scenario.timeline):
        if step.share is None:
            continue
        items = [payload(i) for i in step.share.indicators]
        if step.share.file is not None:
            found, problems = read_file(files, path.parent, step.share.file)
            items += found
            issues += problems
        for g, spec in enumerate(step.share.generators):
            items += generated(scenario.seed, f"{index}.{g}", spec)
        shares[index] = items
    if issues:
        raise ScenarioError(issues)
    return Loaded(scenario=scenario, path=path, shares=shares, files=files)


def _yaml(text: str, shown: str) -> yamlmarks.Located:
    try:
        located = yamlmarks.load(text)
    except yamlmarks.YamlRefused as exc:
        raise ScenarioError([Issue(shown, None, "", f"refused: {exc}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "cannot be parsed"  # str(exc) quotes the line
        raise ScenarioError(
            [Issue(shown, mark.line + 1 if mark else None, "", f"not valid YAML: {problem}")]
        ) from None
    if not isinstance(located.data, dict):
        raise ScenarioError(
            [Issue(shown, 1, "", "a scenario is a YAML mapping (name, participants, timeline)")]
        )
    return located


def _message(error: ErrorDetails) -> str:
    # "Value error, x" reads worse than "x" for a controller.
    return error["msg"].removeprefix("Value error, ")

"""Scenario files are input too: bounded, confined to the scenario's folder, refused without being quoted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crisis.exercise.errors import ScenarioError
from crisis.exercise.files import FilePolicy
from crisis.exercise.loading import load
from tests.exercise.support import FAST

SECRET = "TOP-SECRET-LINE"


def laughs(levels: int = 9) -> str:
    """The classic "billion laughs": under a kilobyte, 10**9 strings once its aliases are expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def with_file(tmp_path: Path, name: str, files: FilePolicy | None = None) -> str:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(FAST.replace("      by: bka\n", f"      by: bka\n      file: {name}\n"))
    with pytest.raises(ScenarioError) as caught:
        load(scenario, files)
    return str(caught.value)


def check(*argv: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "crisis", "exercise", "check", *argv],
        capture_output=True,
        text=True,
        timeout=60,  # a guard: unprotected, the file below ran for over a minute and took gigabytes
        check=False,
    )
    return result, time.monotonic() - started


def test_billion_laughs_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(laughs())
    assert bomb.stat().st_size < 1024
    result, seconds = check(str(bomb))
    print(f"billion laughs refused in {seconds:.2f} s")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "refused: its anchors and aliases expand to more than 100000 nodes" in result.stderr
    assert "lol" not in result.stderr


def test_billion_laughs_in_an_indicator_file(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(laughs())
    assert "bomb.yaml: refused: its anchors and aliases expand" in with_file(tmp_path, "bomb.yaml")


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text("- &h {kind: md5, value: 0123456789abcdef0123456789abcdef}\n- *h\n")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(FAST.replace("      by: bka\n", "      by: bka\n      file: ok.yaml\n"))
    assert [i["kind"] for i in load(scenario).shares[1][2:4]] == ["md5", "md5"]  # after the inline two


def test_a_self_referring_alias(tmp_path: Path) -> None:
    (tmp_path / "loop.yaml").write_text("- &x [*x]\n")
    assert "loop.yaml: refused: an alias refers to a node that contains it" in with_file(
        tmp_path, "loop.yaml"
    )


def test_dev_zero_is_outside_the_folder_and_not_a_regular_file(tmp_path: Path) -> None:
    result, seconds = check(str(_scenario(tmp_path, "/dev/zero")))
    print(f"file: /dev/zero refused in {seconds:.2f} s")
    assert (
        result.returncode == 2
        and "/dev/zero: the indicators file is outside the scenario's folder" in result.stderr
    )
    result, _ = check(str(_scenario(tmp_path, "/dev/zero")), "--allow-path", "/dev")
    assert result.returncode == 2 and "is not a regular file" in result.stderr


def test_a_scenario_that_is_a_device_or_too_large(tmp_path: Path) -> None:
    result, _ = check("/dev/zero")
    assert result.returncode == 2 and "the scenario file is not a regular file" in result.stderr
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1024 * 1024) + "\n")
    result, _ = check(str(big))
    assert (
        result.returncode == 2 and "over the limit of 1048576" in result.stderr and "xxx" not in result.stderr
    )


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jsonl")
    assert "pipe.jsonl: the indicators file is not a regular file" in with_file(tmp_path, "pipe.jsonl")


def test_paths_outside_the_folder_are_refused_and_never_quoted(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.jsonl").write_text(f"{SECRET}\n")
    folder = tmp_path / "drill"
    folder.mkdir()
    (folder / "link.jsonl").symlink_to(outside / "secret.jsonl")
    for name in ("../elsewhere/secret.jsonl", str(outside / "secret.jsonl"), "link.jsonl"):
        error = with_file(folder, name)
        assert "outside the scenario's folder (allow a folder with --allow-path DIR)" in error
        assert SECRET not in error
    # Allowed explicitly, the file is read, and its bad line is named by number, not quoted.
    error = with_file(folder, "../elsewhere/secret.jsonl", FilePolicy.of([outside]))
    assert "secret.jsonl:1: not JSON" in error and SECRET not in error


def test_size_cap_and_encoding_of_indicator_files(tmp_path: Path) -> None:
    (tmp_path / "many.csv").write_text("kind,value\n" + "md5,0123456789abcdef0123456789abcdef\n" * 100)
    assert "many.csv: the indicators file has 3711 bytes, over the limit of 1000" in with_file(
        tmp_path, "many.csv", FilePolicy.of(max_bytes=1000)
    )
    (tmp_path / "latin.csv").write_bytes(
        f"kind,value\nurl,https://x.example/{SECRET}\xe9\n".encode("latin-1")
    )
    error = with_file(tmp_path, "latin.csv")
    assert "latin.csv: the indicators file is not UTF-8 text (byte 0xe9 at offset" in error
    assert SECRET not in error


def test_a_yaml_error_names_the_line_not_its_text(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(f"- kind: md5\n  value: [{SECRET}\n")
    error = with_file(tmp_path, "bad.yaml")
    assert "bad.yaml:" in error and "not YAML/JSON" in error and SECRET not in error


def _scenario(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(FAST.replace("      by: bka\n", f"      by: bka\n      file: {name}\n"))
    return path

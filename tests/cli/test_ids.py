"""Id prefixes as people type them, and ids as `crisis tail` shows them: plain values, no server."""

from __future__ import annotations

import argparse

import pytest

from crisis.cli import ids, tail
from crisis.cli.errors import CliError
from crisis.client import Message


def test_a_prefix_picks_one_id_or_names_the_candidates() -> None:
    known = ["ab12-1", "ab34-2", "cd56-3"]
    assert ids.pick("cd", known, "indicator") == "cd56-3"
    assert ids.pick("ab12-1", [*known, "ab12-10"], "indicator") == "ab12-1"  # a whole id always wins
    with pytest.raises(CliError, match=r"'ab' matches 2 indicators: ab12-1, ab34-2; give more"):
        ids.pick("ab", known, "indicator")
    with pytest.raises(CliError, match="no indicator you may read starts with 'ef'"):
        ids.pick("ef", known, "indicator")
    many = [f"a{i:02d}" for i in range(8)]
    with pytest.raises(CliError, match="a00, a01, a02, a03, a04 and 3 more"):
        ids.pick("a", many, "indicator")


def test_a_whole_id_is_used_as_given() -> None:
    assert ids.whole("c0ffee00-1111-2222-3333-444444444444")
    assert not ids.whole("c0ffee00") and not ids.whole("C0FFEE00-1111-2222-3333-444444444444")
    assert not ids.whole("c0ffee0011112222333344444444444x")


def test_tail_shows_8_characters_of_an_id_or_all_of_it() -> None:
    body = {
        "specversion": "1.0",
        "type": "action.reported",
        "subject": "c0ffee00-1111-2222-3333-444444444444",
        "time": "2026-11-23T20:00:00+00:00",
        "tlp": "amber",
        "data": {"provider_org": "vidshare", "outcome": "removed", "indicator_id": "feedbeef-5555-6666"},
    }
    message = Message("action.reported", body)
    assert "c0ffee00 " in tail.describe(message) and "[feedbeef]" in tail.describe(message)
    whole = tail.describe(message, id_width=0)
    assert "c0ffee00-1111-2222-3333-444444444444" in whole and "[feedbeef-5555-6666]" in whole
    root = argparse.ArgumentParser()
    tail.register(root.add_subparsers(dest="command"))
    assert root.parse_args(["tail", "--full-ids"]).full_ids

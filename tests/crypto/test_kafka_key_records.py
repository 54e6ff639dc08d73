"""The keys topic's records and what a process knows of them, as plain values (crisis.bus.key_records)."""

from __future__ import annotations

import base64
import json

import pytest

from crisis.bus.key_records import (
    BATCH_PREFIX,
    MARKER,
    Batches,
    RecordError,
    decode,
    encode,
    marked,
    marker,
    new_batch,
)

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


def test_a_batch_record_is_compact_json_of_base64_keys_under_a_prefix_no_key_id_has() -> None:
    name = new_batch()
    assert name.startswith(BATCH_PREFIX) and len(name) == len(BATCH_PREFIX) + 32
    value = encode({"c1/i1": A, "c1/i2": B})
    assert value is not None and b" " not in value
    assert json.loads(value) == {"c1/i1": base64.b64encode(A).decode(), "c1/i2": base64.b64encode(B).decode()}
    assert decode(name, value) == {"c1/i1": A, "c1/i2": B}
    assert encode({}) is None and decode(name, None) == {}


def test_a_record_of_the_first_format_is_one_key_under_its_own_id() -> None:
    assert decode("c1/i1", base64.b64encode(A)) == {"c1/i1": A}
    assert decode("c1/i1", None) == {}


@pytest.mark.parametrize("value", [b"{not json", b"[1, 2]", b'{"c1/i1": "***"}', b'{"c1/i1": 3}'])
def test_a_batch_record_that_holds_no_keys_is_refused_clearly(value: bytes) -> None:
    with pytest.raises(RecordError, match="holds"):
        decode("batch/0", value)


def test_a_key_missing_from_a_later_record_of_its_batch_is_never_taken_back() -> None:
    batches = Batches()
    live, drop = batches.read("batch/1", {"x": A, "y": B, "z": C}, 0)
    assert live.keys() == {"x", "y", "z"} and drop == set()
    live, drop = batches.read("batch/1", {"y": B, "z": C}, 1)  # another process destroyed x
    assert live.keys() == {"y", "z"} and drop == {"x"}
    live, drop = batches.read("batch/1", {"x": A, "y": B, "z": C}, 2)  # written back by a process behind
    assert live.keys() == {"y", "z"} and "x" in drop
    assert batches.stale == {"batch/1"} and sorted(batches.kept("batch/1")) == ["y", "z"]
    live, drop = batches.read("batch/1", {}, 3)  # a tombstone
    assert live == {} and drop == {"x", "y", "z"} and batches.stale == set()
    assert batches.where == {}


def test_an_erasure_covers_keys_this_process_never_held() -> None:
    batches = Batches()
    batches.erased.append(lambda kid: kid.startswith("c1/"))
    live, drop = batches.read("batch/1", {"c1/i1": A, "c2/i1": B}, 0)
    assert live.keys() == {"c2/i1"} and drop == {"c1/i1"}
    assert batches.stale == {"batch/1"} and batches.kept("batch/1") == ["c2/i1"]


def test_destroying_names_the_records_to_write_again_and_their_acknowledgement_settles_them() -> None:
    batches = Batches()
    batches.wrote("batch/1", ["x", "y"], 0)
    batches.read("c1", {"c1": C}, 1)  # the first format
    assert batches.destroy(["x"], lambda kid: kid == "c1") == {"batch/1", "c1"}
    assert batches.kept("batch/1") == ["y"] and batches.kept("c1") == []
    batches.wrote("batch/1", ["y"], 2)
    batches.wrote("c1", [], 3)
    assert batches.held == {"batch/1": {"y"}} and batches.where == {"y": "batch/1"}
    assert batches.stale == set()


def test_a_write_acknowledged_after_a_later_record_was_read_leaves_that_record_to_repair() -> None:
    batches = Batches()
    batches.wrote("batch/1", ["x", "y"], 0)
    batches.destroy(["x"], lambda kid: False)
    # Written again at offset 5; before the acknowledgement, a process behind's record at 6 is read.
    batches.read("batch/1", {"x": A, "y": B}, 6)
    batches.wrote("batch/1", ["y"], 5)
    assert batches.stale == {"batch/1"} and batches.kept("batch/1") == ["y"]


def test_a_marker_names_a_destroyed_key_and_holds_no_key() -> None:
    assert marker("c1/i1") == "gone/c1/i1" and marked("gone/c1/i1") == "c1/i1"
    assert marked(new_batch()) is None and marked("c1/i1") is None
    assert json.loads(MARKER) == {"gone": True}


@pytest.mark.parametrize("marker_first", [True, False])
def test_a_marked_key_is_never_taken_back_from_a_record_read_before_or_after(marker_first: bool) -> None:
    batches = Batches()
    if marker_first:
        batches.gone("x")
    live, _ = batches.read("batch/1", {"x": A, "y": B}, 0)  # a stale rewrite, x included
    if not marker_first:
        assert live.keys() == {"x", "y"}
        batches.gone("x")
    assert batches.is_dead("x") and batches.marked == {"x"}
    assert batches.stale == {"batch/1"} and batches.kept("batch/1") == ["y"]
    live, drop = batches.read("batch/1", {"x": A, "y": B}, 1)
    assert live.keys() == {"y"} and "x" in drop
    batches.wrote("batch/1", ["y"], 2)
    assert batches.stale == set()


def test_a_destruction_names_the_keys_to_mark_those_named_and_those_its_covers_reach() -> None:
    batches = Batches()
    batches.read("batch/1", {"c1/i1": A, "c2/i1": B}, 0)
    assert batches.doomed(["c1/i9"], lambda kid: kid.startswith("c1/")) == {"c1/i1", "c1/i9"}

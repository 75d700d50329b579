"""The compiled traversals behind `helios.core.tree_map` and `to_device`: the variant that
keeps some leaves as they are, and tracebacks through the compiled code."""

from __future__ import annotations

import collections
import traceback
from typing import Any, NamedTuple

import pytest

from helios.core import register_container, tree_map
from helios.core._tree import _mapper, _mapper_keeping


class Token:
    """A leaf type of this module's own, so registering it touches no other test."""

    def __init__(self, value: int, kept: bool) -> None:
        self.value = value
        self.kept = kept


class Row(NamedTuple):
    first: Any
    second: Any


def _bump(x: Any) -> Any:
    return Token(x.value + 1, x.kept) if isinstance(x, Token) else x


def test_kept_leaves_stay_and_others_are_mapped_in_every_inline_container() -> None:
    kept, other = Token(1, True), Token(10, False)
    tree = {"l": [kept, other], "t": (kept, other), "r": Row(kept, other), "n": None}
    out = _mapper_keeping(_bump, Token, lambda t: t.kept)(tree)
    assert out["l"][0] is kept
    assert out["t"][0] is kept
    assert out["r"].first is kept
    assert type(out["r"]) is Row
    assert type(out["t"]) is tuple
    assert [x.value for x in (out["l"][1], out["t"][1], out["r"].second)] == [11, 11, 11]
    assert out["n"] is None


def test_registering_the_kept_type_as_a_container_switches_keeping_off() -> None:
    class Box(Token):
        pass

    keeping = _mapper_keeping(_bump, Box, lambda t: t.kept)
    box = Box(1, True)
    assert keeping([box])[0] is box
    register_container(
        Box, lambda b: ([b.value], b.kept), lambda kept, kids: Box(kids[0] * 100, kept)
    )
    # Now a container: its child (an int) is mapped, and it is rebuilt, not kept.
    out = keeping([box, (box,), collections.deque([box])])
    assert [type(x) for x in (out[0], out[1][0], out[2][0])] == [Box, Box, Box]
    assert out[0].value == 100
    assert out[0] is not box


def test_a_mapper_is_built_per_function() -> None:
    double = _mapper(lambda x: x * 2)
    assert double([1, (2, {"a": 3})]) == [2, (4, {"a": 6})]
    assert double is not _mapper(lambda x: x * 2)


def test_a_traceback_through_the_compiled_traversal_shows_its_source() -> None:
    def fail(x: Any) -> Any:
        raise KeyError(x)

    with pytest.raises(KeyError) as caught:
        tree_map(fail, [[1]])
    frames = traceback.extract_tb(caught.value.__traceback__)
    compiled = [frame for frame in frames if frame.filename.startswith("<helios.core._tree")]
    assert compiled, [frame.filename for frame in frames]
    assert all(frame.line for frame in compiled)
    assert "for c in node" in (compiled[-1].line or "")

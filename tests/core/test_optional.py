"""Tests of `helios.core.get_from_optional`."""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios.core import get_from_optional


@given(st.one_of(st.integers(), st.text(), st.lists(st.integers()), st.just(0), st.just("")))
def test_a_value_comes_back_as_the_same_object(value: object) -> None:
    # Falsy values (0, "", []) are values too: only None is missing.
    assert get_from_optional(value) is value


def test_none_is_an_error_naming_what_was_missing() -> None:
    with pytest.raises(ValueError, match="expected the optimizer, got None"):
        get_from_optional(None, what="the optimizer")
    with pytest.raises(ValueError, match="expected value, got None"):
        get_from_optional(None)


def test_helios_1_raise_on_empty_is_not_taken_for_the_description() -> None:
    # 1.x's second parameter was raise_on_empty; passing it positionally must not
    # silently become the message.
    with pytest.raises(TypeError):
        cast(Any, get_from_optional)(3, True)

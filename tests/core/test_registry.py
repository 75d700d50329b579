"""Tests of `helios.core.Registry`."""

from __future__ import annotations

import pytest

from helios.core import Registry


class Shape:
    def __init__(self, size: int = 1) -> None:
        self.size = size


def make_registry() -> Registry[Shape]:
    return Registry("shape")


def test_decorator_registers_under_the_class_name() -> None:
    shapes = make_registry()

    @shapes
    class Square(Shape):
        pass

    assert "Square" in shapes
    assert shapes.get("Square") is Square
    square = shapes.create("Square", 3)
    assert isinstance(square, Square)
    assert square.size == 3


def test_register_method_returns_the_factory_unchanged() -> None:
    shapes = make_registry()

    class Circle(Shape):
        pass

    assert shapes.register(Circle) is Circle
    assert shapes.create("Circle", size=5).size == 5


def test_functions_can_be_factories() -> None:
    shapes = make_registry()

    @shapes.register
    def big_shape() -> Shape:
        return Shape(100)

    assert shapes.create("big_shape").size == 100


def test_names_iteration_and_length_follow_registration_order() -> None:
    shapes = make_registry()
    for name in ("B", "A", "C"):
        shapes.register(type(name, (Shape,), {}))
    assert shapes.names() == ["B", "A", "C"]
    assert list(shapes) == ["B", "A", "C"]
    assert len(shapes) == 3
    assert "D" not in shapes
    assert 3 not in shapes


def test_unknown_name_raises_key_error_listing_known_names() -> None:
    shapes = make_registry()
    shapes.register(type("Zed", (Shape,), {}))
    shapes.register(type("Alpha", (Shape,), {}))
    with pytest.raises(KeyError) as info:
        shapes.create("Beta")
    assert info.value.args[0] == (
        "no shape named 'Beta' is registered; known names: ['Alpha', 'Zed']"
    )
    with pytest.raises(KeyError, match="known names"):
        shapes.get("Beta")


def test_a_name_taken_by_another_class_is_refused_and_the_first_entry_kept() -> None:
    shapes = make_registry()
    first = shapes.register(type("Twin", (Shape,), {}))
    elsewhere = type("Twin", (Shape,), {"__module__": "somewhere.else"})
    with pytest.raises(KeyError, match=r"a shape named 'Twin' is already registered .*tests"):
        shapes.register(elsewhere)
    assert shapes.get("Twin") is first
    assert len(shapes) == 1


def test_the_same_definition_again_replaces_the_entry() -> None:
    # What a notebook does when the cell defining a registered class runs again.
    shapes = make_registry()
    first = shapes.register(type("Twin", (Shape,), {}))
    assert shapes.register(first) is first
    again = shapes.register(type("Twin", (Shape,), {}))
    assert shapes.get("Twin") is again is not first
    assert len(shapes) == 1


def test_non_callables_and_nameless_factories_are_refused() -> None:
    shapes = make_registry()
    with pytest.raises(TypeError, match="it is not callable"):
        shapes.register(3)  # type: ignore[type-var]

    class NoName:
        def __call__(self) -> Shape:
            return Shape()

    with pytest.raises(TypeError, match="it has no __name__"):
        shapes.register(NoName())
    assert len(shapes) == 0


def test_check_can_refuse_a_factory() -> None:
    def only_shapes(factory: object) -> None:
        if not (isinstance(factory, type) and issubclass(factory, Shape)):
            raise TypeError(f"{factory!r} is not a Shape class")

    shapes: Registry[Shape] = Registry("shape", check=only_shapes)

    class Square(Shape):
        pass

    shapes.register(Square)
    with pytest.raises(TypeError, match="is not a Shape class"):
        shapes.register(int)
    assert shapes.names() == ["Square"]

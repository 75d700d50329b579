"""A name -> factory registry, generic over what the factories build."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, cast

__all__ = ["Registry"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[T]):
    """Factories (usually classes) registered under their ``__name__``.

    Use an instance as a decorator, or call `register`. Looking up an unknown name raises
    `KeyError` listing the known names; registering a taken name is refused, except for a
    new definition of the same class (same module and qualified name, as when a notebook
    cell runs again), which replaces the old one.

    Args:
        kind: What the registry holds, for error messages (``"plug-in"``).
        check: Optional validation run on every factory before it is registered; it
            raises `TypeError` to refuse one.

    Examples:
        >>> from helios.core import Registry
        >>> SHAPES: Registry[object] = Registry("shape")
        >>> @SHAPES
        ... class Square:
        ...     def __init__(self, side: int) -> None:
        ...         self.side = side
        >>> SHAPES.create("Square", 3).side
        3
    """

    def __init__(self, kind: str, check: Callable[[object], None] | None = None) -> None:
        self._kind = kind
        self._check = check
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, factory: F) -> F:
        """Register ``factory`` under its ``__name__`` and return it unchanged.

        Raises:
            KeyError: if the name is already registered by another class (one defined
                elsewhere).
            TypeError: if ``factory`` is not callable or the registry's check refuses it.
        """
        if not callable(factory):
            raise TypeError(f"cannot register {factory!r} as a {self._kind}: it is not callable")
        name = getattr(factory, "__name__", None)
        if not isinstance(name, str):
            raise TypeError(f"cannot register {factory!r} as a {self._kind}: it has no __name__")
        if self._check is not None:
            self._check(factory)
        known = self._entries.get(name)
        if known is not None and known is not factory and not _same_definition(known, factory):
            raise KeyError(
                f"a {self._kind} named {name!r} is already registered "
                f"({known!r}, from module {getattr(known, '__module__', '?')}); pick another "
                "class name"
            )
        # The same definition again (a notebook cell or a module run twice) replaces it.
        self._entries[name] = cast(Callable[..., T], factory)
        return factory

    __call__ = register

    def get(self, name: str) -> Callable[..., T]:
        """Return the factory registered as ``name``.

        Raises:
            KeyError: if no factory has that name; the message lists the known names.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(
                f"no {self._kind} named {name!r} is registered; known names: "
                f"{sorted(self._entries)}"
            ) from None

    def create(self, name: str, /, *args: object, **kwargs: object) -> T:
        """Build a new object with the factory registered as ``name``."""
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._entries)


def _same_definition(old: object, new: object) -> bool:
    return (getattr(old, "__module__", None), getattr(old, "__qualname__", None)) == (
        getattr(new, "__module__", None),
        getattr(new, "__qualname__", None),
    )

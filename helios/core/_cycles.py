"""Finding where a tree that should be a tree contains itself, to say so in an error."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

__all__ = ["find_cycle"]


def find_cycle(tree: object, children: Callable[[Any], Sequence[Any] | None]) -> str | None:
    """Describe where a container contains itself (paths use mapping keys), or ``None``.

    Args:
        tree: The tree to search.
        children: The sub-trees of a node in container order, ``None`` for a leaf.
    """
    on_path: dict[int, str] = {}
    # Iterative depth-first search; each frame is (node, path, remaining children).
    stack: list[tuple[object, str, Iterator[tuple[Any, Any]] | None]] = [(tree, "batch", None)]
    while stack:
        node, path, pending = stack[-1]
        if pending is None:
            kids = children(node)
            if kids is None:
                stack.pop()
                continue
            if id(node) in on_path:
                return f"{path} is {on_path[id(node)]}, which contains it"
            on_path[id(node)] = path
            labels: Sequence[Any] = range(len(kids))
            if isinstance(node, Mapping) and len(node) == len(kids):
                labels = list(node.keys())
            stack[-1] = (node, path, iter(zip(labels, kids, strict=True)))
            continue
        step = next(pending, None)
        if step is None:
            on_path.pop(id(node), None)
            stack.pop()
            continue
        label, child = step
        stack.append((child, f"{path}[{label!r}]", None))
    return None

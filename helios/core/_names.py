"""Which member names look like a hook but are none: misspellings and retired names."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Mapping

__all__ = ["misnamed_members", "suggest_hook"]

# Words a user may write for the ones helios's hook names use.
_SYNONYMS: Mapping[str, str] = {
    "train": "training",
    "val": "validation",
    "valid": "validation",
    "validate": "validation",
    "test": "testing",
    "stopping": "stop",
    "batches": "batch",
}


def _words(name: str) -> tuple[str, ...]:
    return tuple(sorted(_SYNONYMS.get(word, word) for word in name.strip("_").split("_")))


def suggest_hook(name: str, hooks: Collection[str]) -> str | None:
    """The hook ``name`` was probably meant to be, or ``None`` if it looks like none.

    A name matches a hook when it has the same words in any order (``train`` for
    ``training``, ``valid`` for ``validation``, ...), or when it is a near-miss spelling.

    Examples:
        >>> hooks = ["on_training_start", "should_training_stop"]
        >>> suggest_hook("should_stop_training", hooks), suggest_hook("on_train_start", hooks)
        ('should_training_stop', 'on_training_start')
        >>> suggest_hook("on_trainig_start", hooks), suggest_hook("forward", hooks)
        ('on_training_start', None)
    """
    if name in hooks:
        return None
    words = _words(name)
    for hook in sorted(hooks):
        if _words(hook) == words:
            return hook
    close = difflib.get_close_matches(name, sorted(hooks), n=1, cutoff=0.85)
    return close[0] if close else None


def _own_names(cls: type, base: type | None) -> Iterator[str]:
    """Public callable members that ``cls`` (and its bases up to ``base``) define."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if klass is base or klass is object:
            break
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if callable(value) or isinstance(value, staticmethod | classmethod):
                yield name


def misnamed_members(
    cls: type,
    base: type | None,
    hooks: Collection[str],
    retired: Mapping[str, str],
) -> list[str]:
    """Sentences about the members of ``cls`` that look like hooks but are none.

    Args:
        cls: The user's class.
        base: The helios base class it extends (its members are not looked at), or
            ``None`` for a structural class.
        hooks: The names the trainer calls.
        retired: Names of hooks that no longer exist, with what replaced them.
    """
    found = []
    for name in _own_names(cls, base):
        if name in retired:
            found.append(f"{name} is no longer called: {retired[name]}")
            continue
        meant = suggest_hook(name, hooks)
        if meant is not None:
            found.append(f"{name} is not a hook and is never called; did you mean {meant}?")
    return found

"""Shared hypothesis strategies: nested batches, plug-in sets, training states.

The container types below cover every kind `helios.core.tree_map` supports. They are
module-level so their identity is stable across tests (the tree-map caches handlers by
type), and ``Bag`` is registered with `helios.core.register_container` on import.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import attrs
import torch
from hypothesis import strategies as st

import helios.plugins as hlp
from helios.core import TrainingState, register_container

__all__ = [
    "AttrsBox",
    "Bag",
    "Box",
    "FrozenAttrsBox",
    "FrozenBox",
    "Pair",
    "PluginSpec",
    "SpecPlugin",
    "StructuralPlugin",
    "SubBag",
    "WithInitFalse",
    "batches",
    "default_factory",
    "leaves",
    "make_plugin",
    "override_flags",
    "plugin_specs",
    "small_tensors",
    "training_states",
]


# -- container types ------------------------------------------------------------------


class Pair(NamedTuple):
    first: Any
    second: Any


@dataclasses.dataclass
class Box:
    left: Any
    right: Any


@dataclasses.dataclass(frozen=True)
class FrozenBox:
    left: Any
    right: Any


@dataclasses.dataclass
class WithInitFalse:
    """A dataclass whose second field is not an ``__init__`` parameter."""

    given: Any
    derived: Any = dataclasses.field(init=False, default=None)
    #: Counts ``__post_init__`` runs: rebuilding must not run it again.
    post_inits: int = dataclasses.field(init=False, default=0, compare=False)

    def __post_init__(self) -> None:
        self.post_inits += 1


def with_init_false(given: Any, derived: Any) -> WithInitFalse:
    out = WithInitFalse(given)
    out.derived = derived
    return out


@attrs.define
class AttrsBox:
    left: Any
    right: Any


@attrs.frozen
class FrozenAttrsBox:
    left: Any
    right: Any


class Bag:
    """A user container, joined to the tree-map with `register_container`.

    ``label`` is auxiliary data (not a sub-tree); ``items`` are the children.
    """

    def __init__(self, items: Sequence[Any], label: str = "") -> None:
        self.items = list(items)
        self.label = label

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.items!r}, label={self.label!r})"


class SubBag(Bag):
    """A subclass of a registered container: handled through its base's registration."""


def _flatten_bag(bag: Bag) -> tuple[list[Any], tuple[type[Bag], str]]:
    return bag.items, (type(bag), bag.label)


def _unflatten_bag(aux: tuple[type[Bag], str], children: Sequence[Any]) -> Bag:
    cls, label = aux
    return cls(children, label)


register_container(Bag, _flatten_bag, _unflatten_bag)


def default_factory() -> list[Any]:
    """A named ``defaultdict`` factory, so tests can check it is kept by identity."""
    return []


# -- leaves and batches ---------------------------------------------------------------


def small_tensors() -> st.SearchStrategy[torch.Tensor]:
    """Small float, int or bool CPU tensors (0-d to 2-d), without NaN."""
    floats = st.lists(st.floats(-10, 10, allow_nan=False, width=32), min_size=1, max_size=4).map(
        lambda xs: torch.tensor(xs, dtype=torch.float32)
    )
    ints = st.lists(st.integers(-100, 100), min_size=1, max_size=4).map(
        lambda xs: torch.tensor(xs, dtype=torch.int64)
    )
    scalars = st.floats(-10, 10, allow_nan=False).map(lambda x: torch.tensor(x))
    bools = st.lists(st.booleans(), min_size=1, max_size=4).map(torch.tensor)
    matrices = st.integers(1, 3).map(lambda n: torch.arange(n * 2, dtype=torch.float64).view(n, 2))
    return st.one_of(floats, ints, scalars, bools, matrices)


def leaves() -> st.SearchStrategy[Any]:
    """Leaves: small tensors, ints, floats (NaN and infinities included), strings, None."""
    return st.one_of(
        st.none(),
        st.integers(-1000, 1000),
        st.floats(width=32),
        st.text(max_size=3),
        small_tensors(),
    )


_keys = st.one_of(st.text(min_size=1, max_size=3), st.integers(-3, 3))


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    kids = st.lists(children, max_size=3)
    mappings = st.dictionaries(_keys, children, max_size=3)
    return st.one_of(
        kids,
        kids.map(tuple),
        st.builds(Pair, children, children),
        mappings,
        mappings.map(collections.OrderedDict),
        mappings.map(lambda d: collections.defaultdict(default_factory, d)),
        mappings.map(lambda d: collections.defaultdict(list, d)),
        st.builds(
            lambda items, extra: collections.deque(
                items, maxlen=None if extra is None else len(items) + extra
            ),
            kids,
            st.none() | st.integers(0, 2),
        ),
        st.builds(Box, children, children),
        st.builds(FrozenBox, children, children),
        st.builds(with_init_false, children, children),
        st.builds(AttrsBox, children, children),
        st.builds(FrozenAttrsBox, children, children),
        st.builds(Bag, kids, st.text(max_size=2)),
        st.builds(SubBag, kids, st.text(max_size=2)),
    )


def batches(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Nested batches of every supported container kind (a bare leaf included)."""
    return st.recursive(leaves(), _containers, max_leaves=max_leaves)


# -- training states ------------------------------------------------------------------


def training_states() -> st.SearchStrategy[TrainingState]:
    counts = st.integers(0, 10_000)
    return st.builds(
        TrainingState,
        current_iteration=counts,
        global_iteration=counts,
        global_epoch=counts,
        validation_cycles=counts,
        dataset_iter=counts,
        early_stop_count=counts,
        average_iter_time=st.floats(0, 100, allow_nan=False),
        running_iter=counts,
    )


# -- plug-in sets ---------------------------------------------------------------------


def override_flags() -> st.SearchStrategy[frozenset[str]]:
    """A random subset of the unique-override flags."""
    return st.frozensets(st.sampled_from(sorted(hlp.OVERRIDE_FLAGS)))


@attrs.frozen
class PluginSpec:
    """What to build: an id, the flags it claims, and whether it subclasses `hlp.Plugin`."""

    plug_id: str
    flags: frozenset[str]
    structural: bool


def plugin_specs(
    ids: Sequence[str] = ("a", "b", "c", "d", "e"), max_size: int = 8
) -> st.SearchStrategy[list[PluginSpec]]:
    """Sequences of plug-in specs; the small id pool makes duplicate ids likely."""
    spec = st.builds(PluginSpec, st.sampled_from(ids), override_flags(), st.booleans())
    return st.lists(spec, max_size=max_size)


class SpecPlugin(hlp.Plugin):
    """A `hlp.Plugin` subclass claiming the given flags (the seed form)."""

    def __init__(self, plug_id: str, flags: frozenset[str] = frozenset()) -> None:
        super().__init__(plug_id)
        for flag in flags:
            setattr(self.unique_overrides, flag, True)


class StructuralPlugin:
    """A plug-in that inherits nothing and provides every member of the protocol."""

    trainer: Any
    device: torch.device
    rank: int
    is_distributed: bool
    map_loc: hlp.MapLocation

    def __init__(self, plug_id: str, flags: frozenset[str] = frozenset()) -> None:
        self._plug_id = plug_id
        self.unique_overrides = hlp.UniquePluginOverrides(
            **{flag: flag in flags for flag in hlp.OVERRIDE_FLAGS}
        )
        self.device = torch.device("cpu")
        self.rank = 0
        self.is_distributed = False
        self.map_loc = "cpu"
        self.calls: list[str] = []

    @property
    def plug_id(self) -> str:
        return self._plug_id

    def configure_trainer(self, trainer: Any, /) -> None:
        trainer.register_plugin(self)

    def configure_model(self, model: Any, /) -> None:
        self.calls.append("configure_model")

    def setup(self) -> None:
        self.calls.append("setup")

    def on_training_start(self) -> None:
        self.calls.append("on_training_start")

    def on_training_end(self) -> None:
        self.calls.append("on_training_end")

    def on_validation_start(self, validation_cycle: int, /) -> None:
        self.calls.append("on_validation_start")

    def on_validation_end(self, validation_cycle: int, /) -> None:
        self.calls.append("on_validation_end")

    def on_testing_start(self) -> None:
        self.calls.append("on_testing_start")

    def on_testing_end(self) -> None:
        self.calls.append("on_testing_end")

    def process_training_batch(self, batch: Any, state: TrainingState, /) -> Any:
        return batch

    def process_validation_batch(self, batch: Any, step: int, /) -> Any:
        return batch

    def process_testing_batch(self, batch: Any, step: int, /) -> Any:
        return batch

    def should_training_stop(self) -> bool:
        return False

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: Any, /) -> None:
        pass


def make_plugin(spec: PluginSpec) -> SpecPlugin | StructuralPlugin:
    """Build the plug-in a `PluginSpec` describes."""
    cls = StructuralPlugin if spec.structural else SpecPlugin
    return cls(spec.plug_id, spec.flags)

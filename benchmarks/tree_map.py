"""Benchmark `helios.core.tree_map` against ``torch.utils._pytree`` and optree.

Run it from the repository root::

    python benchmarks/tree_map.py            # the full run (about 20 s)
    python benchmarks/tree_map.py --quick    # a sanity run (a few seconds); noisy numbers
    python benchmarks/tree_map.py --clock wall   # wall time instead of CPU time

It prints three tables of microseconds per call, each row with the ratio of helios to the
fastest competitor whose result was *correct* (helios / best correct; below 1 means
helios is faster), then whether helios meets its speed targets:

1. `helios.core.tree_map`, ``torch.utils._pytree.tree_map`` and ``optree.tree_map`` on
   each batch kind x operation (identity, ``.to("cpu")`` and ``.to(torch.float64)`` on
   tensors, other leaves unchanged), each library as it comes.
2. The dataclass and attrs batches again, with the record classes registered with
   ``torch.utils._pytree`` and optree (flatten to the fields, rebuild by calling the
   class), the comparison a user of those libraries would make.
3. The device mover, ``helios.core.to_device("cpu")``, against a hand-written recursive
   mover and movers built on the other two libraries. All of them skip a tensor already
   on the target device with the same test (``tensor.is_cpu``, several times cheaper
   than ``tensor.device.type``), so the traversal is what is compared.

Method:

- Tensors are 8x8 float32 on the CPU, so the traversal, not the tensor work, dominates.
- Each sample times ``n`` back-to-back calls (garbage collection off); ``n`` is
  calibrated so a sample lasts about 5 ms (1 ms with ``--quick``). The clock is this
  process's CPU time (`time.process_time`) by default: with one torch thread it counts
  the work done and not the time spent descheduled, which on a busy shared machine
  swamps differences of a few percent in wall time; ``--clock wall`` uses
  `time.perf_counter`. Every repeat times all libraries, in an order that rotates from
  repeat to repeat, so drift and noise hit them all alike. The tables show the fastest
  sample of each cell (as `timeit` advises: noise from other processes only ever adds
  time, so the minimum is the steadiest estimate).
- Each library is called the way a user would call it, with no wrapper in the timed loop.
  optree is called with ``none_is_leaf=True`` so that, like helios, it hands ``None``
  leaves to the function (its default treats ``None`` as an empty container).
  ``torch.utils._pytree`` has no such switch; it treats ``None`` as an empty container.
  Either way ``None`` comes back as ``None``, so the result is the same.
- Neither competitor knows dataclasses or attrs classes unless they are registered; in
  the first table each library is used as it comes, so there they hand the whole record
  to the function and are marked WRONG. The second table registers them.
- Correctness is checked once per cell, outside the timing, by an independent reference
  walk: every container must come back with the same type (and key order, and fields),
  every tensor leaf must reach the function exactly once and come back transformed, and
  every other leaf must come back unchanged. The device movers are checked by moving to
  the ``meta`` device, where an unmoved tensor is visible.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import attrs
import optree
import torch
import torch.utils._pytree as torch_pytree

import helios.core as hlc

LeafFn = Callable[[Any], Any]
#: ``mapper(fn, tree) -> tree``: one library's tree-map, as a plain function.
Mapper = Callable[[LeafFn, Any], Any]
#: ``timer(fn, tree, n) -> seconds`` for ``n`` calls of one library's tree-map.
#: What times a sample: `time.process_time` or `time.perf_counter`.
Clock = Callable[[], float]
#: ``timer(fn, tree, n, clock) -> seconds`` for ``n`` calls of one library's tree-map.
Timer = Callable[[LeafFn, Any, int, Clock], float]
#: ``mover(tree) -> tree``: a device mover with its target device already bound.
Mover = Callable[[Any], Any]
MoverFactory = Callable[[torch.device], Mover]


# --------------------------------------------------------------------------- batches


def _tensor() -> torch.Tensor:
    return torch.randn(8, 8)


_FIELDS = ("image", "target", "mask", "weight", "label", "noise")


class NamedTupleBatch(NamedTuple):
    image: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    weight: torch.Tensor
    label: torch.Tensor
    noise: torch.Tensor


def _record_class(name: str, decorate: Callable[[type], type]) -> type:
    """A class ``name`` with the `torch.Tensor` fields of `NamedTupleBatch`, made a
    record by ``decorate`` (`dataclasses.dataclass` or `attrs.define`), as if written out."""
    namespace = {
        "__annotations__": dict.fromkeys(_FIELDS, torch.Tensor),
        "__module__": __name__,
        "__qualname__": name,
    }
    return decorate(type(name, (), namespace))


DataclassBatch = _record_class("DataclassBatch", dataclasses.dataclass)
AttrsBatch = _record_class("AttrsBatch", attrs.define)
# The same records again, to be registered with the competitors for the second table.
RegisteredDataclassBatch = _record_class("RegisteredDataclassBatch", dataclasses.dataclass)
RegisteredAttrsBatch = _record_class("RegisteredAttrsBatch", attrs.define)

_NAMESPACE = "helios-benchmark"


def _register_records() -> None:
    """Teach torch._pytree and optree the ``Registered*`` records, as their users would.

    Flattening reads the fields; unflattening calls the class, the cheapest rebuild
    (helios instead copies the record and replaces its fields, which also keeps frozen
    classes, ``init=False`` fields and non-field attributes).
    """
    for cls in (RegisteredDataclassBatch, RegisteredAttrsBatch):

        def values(record: Any) -> list[Any]:
            return [getattr(record, name) for name in _FIELDS]

        def torch_unflatten(children: Any, _: Any, cls: type = cls) -> Any:
            return cls(*children)

        def optree_unflatten(_: Any, children: Any, cls: type = cls) -> Any:
            return cls(*children)

        torch_pytree.register_pytree_node(cls, lambda r: (values(r), None), torch_unflatten)
        optree.register_pytree_node(
            cls,
            lambda r: (values(r), None),
            optree_unflatten,
            namespace=_NAMESPACE,
        )


def _nested_batch() -> dict[str, Any]:
    """About 200 tensor leaves among strings, ints and ``None``, nested several ways."""
    return {
        "samples": [(_tensor(), _tensor(), f"id-{i}", i) for i in range(40)],
        "features": [
            {"embedding": _tensor(), "attention": (_tensor(), None), "length": i}
            for i in range(30)
        ],
        "targets": {
            "boxes": [_tensor() for _ in range(20)],
            "labels": tuple(_tensor() for _ in range(20)),
            "masks": None,
        },
        "crops": [[_tensor(), [_tensor(), (_tensor(), "crop")]] for _ in range(10)],
        "meta": {"names": [f"name-{i}" for i in range(10)], "epoch": 3, "split": None},
    }


def _batches() -> list[tuple[str, Any]]:
    return [
        ("list of 4", [_tensor() for _ in range(4)]),
        ("dict of 8", {f"key{i}": _tensor() for i in range(8)}),
        ("nested", _nested_batch()),
        ("dataclass", DataclassBatch(*[_tensor() for _ in _FIELDS])),
        ("named tuple", NamedTupleBatch(*[_tensor() for _ in _FIELDS])),
        ("attrs", AttrsBatch(*[_tensor() for _ in _FIELDS])),
    ]


# --------------------------------------------------------------------------- operations


def _identity(x: Any) -> Any:
    return x


def _to_cpu(x: Any) -> Any:
    return x.to("cpu") if isinstance(x, torch.Tensor) else x


def _to_float64(x: Any) -> Any:
    return x.to(torch.float64) if isinstance(x, torch.Tensor) else x


OPERATIONS: list[tuple[str, LeafFn]] = [
    ("identity", _identity),
    ('.to("cpu")', _to_cpu),
    (".to(float64)", _to_float64),
]


# --------------------------------------------------------------------------- libraries


def _optree_map(fn: LeafFn, tree: Any) -> Any:
    return optree.tree_map(fn, tree, none_is_leaf=True)


# Every timer is compiled from this one loop, so that what it times is the library's call
# spelled as a user would spell it, and nothing else: no wrapper, no `functools.partial`.
_LOOP = """
def timed(fn, tree, n, clock):
    call = {callee}
    start = clock()
    for _ in repeat(None, n):
        call({arguments})
    return clock() - start
"""


def _timer(callee: Callable[..., Any] | None, arguments: str) -> Timer:
    """``timed(fn, tree, n, clock)``: the seconds ``n`` calls of ``callee(<arguments>)``
    take by ``clock`` (of ``fn(<arguments>)`` with no ``callee``); the arguments may name
    ``fn`` and ``tree``."""
    source = _LOOP.format(callee="fn" if callee is None else "CALLEE", arguments=arguments)
    names: dict[str, Any] = {
        "CALLEE": callee,
        "repeat": itertools.repeat,
    }
    exec(compile(source, f"<timer: {arguments}>", "exec"), names)
    timed: Timer = names["timed"]
    return timed


_time_helios = _timer(hlc.tree_map, "fn, tree")
_time_torch = _timer(torch_pytree.tree_map, "fn, tree")
_time_optree = _timer(optree.tree_map, "fn, tree, none_is_leaf=True")
_time_optree_registered = _timer(
    optree.tree_map, f"fn, tree, none_is_leaf=True, namespace={_NAMESPACE!r}"
)
#: ``_time_mover(mover, tree, n, clock)``.
_time_mover = _timer(None, "tree")


def _optree_map_registered(fn: LeafFn, tree: Any) -> Any:
    return optree.tree_map(fn, tree, none_is_leaf=True, namespace=_NAMESPACE)


LIBRARIES: list[tuple[str, Mapper, Timer]] = [
    ("helios", hlc.tree_map, _time_helios),
    ("torch._pytree", torch_pytree.tree_map, _time_torch),
    ("optree", _optree_map, _time_optree),
]
#: The same, with optree looking in the namespace that knows the ``Registered*`` records.
REGISTERED_LIBRARIES: list[tuple[str, Mapper, Timer]] = [
    *LIBRARIES[:2],
    ("optree", _optree_map_registered, _time_optree_registered),
]


# --------------------------------------------------------------------------- device movers


def _hand_written_mover(device: torch.device) -> Mover:
    """The recursive mover people write by hand, done carefully (types kept).

    It skips a tensor already on the target device with the same test `to_device` uses
    (``tensor.is_cpu``, much cheaper than ``tensor.device.type``), so the comparison is
    of the traversal alone.
    """
    tensor_type = torch.Tensor
    target = device.type
    to_cpu = target == "cpu"

    def move(x: Any) -> Any:
        if isinstance(x, tensor_type):
            if to_cpu:
                return x if x.is_cpu else x.to(device)
            return x if x.device.type == target else x.to(device)
        if isinstance(x, dict):
            return type(x)({key: move(value) for key, value in x.items()})
        if isinstance(x, list):
            return [move(item) for item in x]
        if isinstance(x, tuple):
            items = [move(item) for item in x]
            return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)
        return x

    return move


def _leaf_mover(device: torch.device) -> LeafFn:
    """The same per-leaf decision `helios.core.to_device` makes, for the other libraries."""
    tensor_type = torch.Tensor
    target = device.type

    if target == "cpu":

        def move(x: Any) -> Any:
            if isinstance(x, tensor_type) and not x.is_cpu:
                return x.to(device)
            return x

    else:

        def move(x: Any) -> Any:
            if isinstance(x, tensor_type) and x.device.type != target:
                return x.to(device)
            return x

    return move


def _optree_mover(device: torch.device) -> Mover:
    move = _leaf_mover(device)
    tree_map = optree.tree_map
    return lambda tree: tree_map(move, tree, none_is_leaf=True)


def _torch_pytree_mover(device: torch.device) -> Mover:
    move = _leaf_mover(device)
    tree_map = torch_pytree.tree_map
    return lambda tree: tree_map(move, tree)


MOVERS: list[tuple[str, MoverFactory]] = [
    ("helios.to_device", hlc.to_device),
    ("hand-written", _hand_written_mover),
    ("torch._pytree", _torch_pytree_mover),
    ("optree", _optree_mover),
]


# --------------------------------------------------------------------------- correctness


def _is_record(x: object) -> bool:
    return dataclasses.is_dataclass(x) or attrs.has(type(x))


def _record_fields(x: Any) -> list[str]:
    if dataclasses.is_dataclass(x):
        return [field.name for field in dataclasses.fields(x)]
    return [field.name for field in attrs.fields(type(x))]


def _children(x: object) -> list[tuple[str, Any]] | None:
    """The reference view of a container's children, or ``None`` for a leaf."""
    if isinstance(x, dict):
        return [(f"[{key!r}]", value) for key, value in x.items()]
    if isinstance(x, list | tuple):
        return [(f"[{index}]", item) for index, item in enumerate(x)]
    if _is_record(x):
        return [(f".{name}", getattr(x, name)) for name in _record_fields(x)]
    return None


def _tensors(tree: object) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    children = _children(tree)
    return [] if children is None else [t for _, child in children for t in _tensors(child)]


def _compare(
    before: object, after: object, expect: Callable[[torch.Tensor], torch.Tensor], path: str
) -> str | None:
    """Return the first difference between ``after`` and the expected result, or ``None``."""
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor):
            return f"{path} became {type(after).__name__}"
        want = expect(before)
        if after.dtype != want.dtype or after.device != want.device:
            return f"{path} is {after.dtype} on {after.device}, not {want.dtype} on {want.device}"
        return None
    if type(after) is not type(before):
        return f"{path} became {type(after).__name__}, not {type(before).__name__}"
    children_before = _children(before)
    if children_before is None:
        return None if after is before or after == before else f"{path} changed"
    children_after = _children(after)
    assert children_after is not None
    if [name for name, _ in children_before] != [name for name, _ in children_after]:
        return f"{path}: keys or length changed"
    for (name, child_before), (_, child_after) in zip(
        children_before, children_after, strict=True
    ):
        problem = _compare(child_before, child_after, expect, path + name)
        if problem is not None:
            return problem
    return None


def _expectation(op_name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if op_name == ".to(float64)":
        return lambda t: t.to(torch.float64)
    return lambda t: t


def _check_map(mapper: Mapper, op_name: str, op: LeafFn, tree: Any) -> str | None:
    """``None`` if ``mapper(op, tree)`` is right, else what is wrong."""
    seen: list[Any] = []

    def recording(x: Any) -> Any:
        seen.append(x)
        return op(x)

    try:
        out = mapper(recording, tree)
    except Exception as error:
        return f"raised {type(error).__name__}: {error}"
    if op_name == "identity" and out is not tree and _children(tree) is None:
        return "returned a different object"
    tensors = _tensors(tree)
    seen_ids = [id(x) for x in seen]
    missed = sum(1 for t in tensors if seen_ids.count(id(t)) != 1)
    if missed:
        whole = [type(x).__name__ for x in seen if _children(x) is not None]
        why = f" ({', '.join(sorted(set(whole)))} passed to fn whole)" if whole else ""
        return f"{missed}/{len(tensors)} tensor leaves unmapped{why}"
    return _compare(tree, out, _expectation(op_name), "batch")


def _check_mover(factory: MoverFactory, tree: Any) -> str | None:
    meta = torch.device("meta")
    try:
        out = factory(meta)(tree)
    except Exception as error:
        return f"raised {type(error).__name__}: {error}"
    problem = _compare(tree, out, lambda t: t.to(meta), "batch")
    return None if problem is None else problem.replace("on meta", "on meta (unmoved)")


# --------------------------------------------------------------------------- timing


def _bind_timer(timer: Timer, op: LeafFn, tree: Any, clock: Clock) -> Callable[[int], float]:
    return lambda n: timer(op, tree, n, clock)


def _calibrate(run: Callable[[int], float], target_s: float) -> int:
    n = 1
    while True:
        elapsed = run(n)
        if elapsed >= target_s / 10 or n >= 1 << 20:
            return max(1, int(n * target_s / max(elapsed, 1e-9)))
        n *= 4


def _measure(runs: Sequence[Callable[[int], float]], repeats: int, target_s: float) -> list[float]:
    """Best microseconds per call of each ``run(n) -> seconds``, interleaved."""
    counts = [_calibrate(run, target_s) for run in runs]
    samples: list[list[float]] = [[] for _ in runs]
    # The timed calls make no reference cycles, so the collector can stay off for the
    # whole cell (collecting before every sample would cost more than the samples).
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for repeat in range(repeats):
            shift = repeat % len(runs)
            for index in [*range(shift, len(runs)), *range(shift)]:
                elapsed = runs[index](counts[index])
                samples[index].append(elapsed / counts[index] * 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return [min(s) for s in samples]


def _leaf_count(tree: object) -> int:
    children = _children(tree)
    return 1 if children is None else sum(_leaf_count(child) for _, child in children)


def _format_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(
        cell.ljust(width) if i < 3 else cell.rjust(width)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    ).rstrip()


def _ratio_cell(ours: float, theirs: Sequence[tuple[str, float, str | None]]) -> str:
    correct = [(us, name) for name, us, problem in theirs if problem is None]
    if not correct:
        return "n/a (none correct)"
    best_us, best_name = min(correct)
    return f"{ours / best_us:.2f}x {best_name}"


def _table(
    title: str,
    names: Sequence[str],
    rows: Sequence[tuple[str, str, str, list[float], list[str | None]]],
) -> list[str]:
    header = ["batch", "leaves", "operation", *[f"{name} us" for name in names]]
    header.append(f"{names[0]} / best correct")
    body: list[list[str]] = []
    for batch, leaves, op, times, problems in rows:
        cells = [batch, leaves, op]
        cells += [
            f"{us:.2f}" + ("" if problem is None else " WRONG")
            for us, problem in zip(times, problems, strict=True)
        ]
        if problems[0] is not None:
            cells.append("WRONG")
        else:
            cells.append(
                _ratio_cell(times[0], list(zip(names[1:], times[1:], problems[1:], strict=True)))
            )
        body.append(cells)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [title, _format_row(header, widths), "  ".join("-" * w for w in widths)]
    lines += [_format_row(cells, widths) for cells in body]
    wrong = [
        f"  {name} / {batch} / {op}: {problem}"
        for batch, _, op, _, problems in rows
        for name, problem in zip(names, problems, strict=True)
        if problem is not None
    ]
    if wrong:
        lines += ["", "WRONG results:", *wrong]
    return lines


Row = tuple[str, str, str, list[float], list[str | None]]


def _map_rows(
    batches: Sequence[tuple[str, Any]],
    libraries: Sequence[tuple[str, Mapper, Timer]],
    repeats: int,
    target_s: float,
    clock: Clock,
) -> list[Row]:
    rows: list[Row] = []
    for batch_name, tree in batches:
        leaves = str(_leaf_count(tree))
        for op_name, op in OPERATIONS:
            problems = [_check_map(mapper, op_name, op, tree) for _, mapper, _ in libraries]
            runs = [_bind_timer(timer, op, tree, clock) for _, _, timer in libraries]
            times = _measure(runs, repeats, target_s)
            rows.append((batch_name, leaves, op_name, times, problems))
    return rows


def _mover_rows(
    batches: Sequence[tuple[str, Any]], repeats: int, target_s: float, clock: Clock
) -> list[Row]:
    cpu = torch.device("cpu")
    rows: list[Row] = []
    for batch_name, tree in batches:
        problems = [_check_mover(factory, tree) for _, factory in MOVERS]
        runs = [_bind_timer(_time_mover, factory(cpu), tree, clock) for _, factory in MOVERS]
        times = _measure(runs, repeats, target_s)
        rows.append((batch_name, str(_leaf_count(tree)), 'to "cpu"', times, problems))
    return rows


def _best_correct(times: Sequence[float], problems: Sequence[str | None]) -> float | None:
    correct = [us for us, problem in zip(times[1:], problems[1:], strict=True) if problem is None]
    return min(correct) if correct else None


def _targets(rows: Sequence[Row], mover_rows: Sequence[Row]) -> list[str]:
    """The speed targets for helios, each with its verdict in this run."""
    wrong = sorted({f"{batch} / {op}" for batch, _, op, _, problems in rows if problems[0]})
    lines = [("met" if not wrong else "NOT met: " + ", ".join(wrong)) + ": helios correct"]
    slower = []
    for batch, _, op, times, problems in rows:
        best = _best_correct(times, problems)
        if op == ".to(float64)" and best is not None and times[0] > best:
            slower.append(f"{batch} ({times[0] / best:.2f}x)")
    verdict = "met" if not slower else "NOT met: " + ", ".join(slower)
    lines.append(f"{verdict}: .to(float64) no slower than the fastest correct competitor")
    for batch, _, op, times, problems in rows:
        if batch == "nested" and op == "identity" and problems[2] is None:
            ratio = times[0] / times[2]
            verdict = "met" if ratio <= 1.3 else "NOT met"
            lines.append(f"{verdict}: nested identity within 1.3x of optree ({ratio:.2f}x)")
    slower = []
    for batch, _, _, times, problems in mover_rows:
        best = _best_correct(times, problems)
        if problems[0] is not None or (best is not None and times[0] > best):
            slower.append(batch)
    verdict = "met" if not slower else "NOT met: " + ", ".join(slower)
    lines.append(f"{verdict}: to_device correct and no slower than the fastest correct mover")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="few, short samples: a sanity run, not numbers"
    )
    parser.add_argument("--repeats", type=int, default=None, help="samples per cell")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="what times a sample: this process's CPU time (default) or wall time",
    )
    args = parser.parse_args(argv)
    repeats = args.repeats or (5 if args.quick else 25)
    target_s = 0.001 if args.quick else 0.005

    # One intra-op thread: the tensors are tiny, and thread hand-offs only add noise.
    torch.set_num_threads(1)
    torch.manual_seed(0)
    _register_records()
    batches = _batches()
    registered = [
        ("dataclass", RegisteredDataclassBatch(*[_tensor() for _ in _FIELDS])),
        ("attrs", RegisteredAttrsBatch(*[_tensor() for _ in _FIELDS])),
    ]
    names = [name for name, _, _ in LIBRARIES]
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rows = _map_rows(batches, LIBRARIES, repeats, target_s, clock)
    registered_rows = _map_rows(registered, REGISTERED_LIBRARIES, repeats, target_s, clock)
    mover_rows = _mover_rows(batches, repeats, target_s, clock)

    print(
        f"torch {torch.__version__}, optree {optree.__version__}, 8x8 float32 tensors, "
        f"best of {repeats} interleaved samples, {args.clock} clock"
        f"{' (--quick)' if args.quick else ''}"
    )
    print()
    print("\n".join(_table("tree_map: microseconds per call", names, rows)))
    print()
    title = "tree_map, records registered with torch._pytree and optree: microseconds per call"
    print("\n".join(_table(title, names, registered_rows)))
    print()
    title = "device movers, tensors already on the CPU: microseconds per call"
    print("\n".join(_table(title, [name for name, _ in MOVERS], mover_rows)))
    print()
    print("targets (first table and movers):")
    print("\n".join(f"  {line}" for line in _targets(rows, mover_rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

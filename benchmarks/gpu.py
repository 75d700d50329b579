"""helios on one GPU: step time, the device mover, copy bandwidth and prefetching.

Run it on a machine with a CUDA GPU, from the repository root::

    python benchmarks/gpu.py               # the full run (well under a minute on an H200)
    python benchmarks/gpu.py --quick       # a sanity run; noisy numbers
    python benchmarks/gpu.py --json r.json # also write the results (scripts/gpu-check does)

Four sections, measured side by side in one run:

1. **Step time**: microseconds per training step of helios (``Trainer(gpus=[0])`` with
   ``CUDAPlugin``, with and without ``prefetch``) against a handwritten loop doing the same
   tensor work on the same pinned batches, for a tiny MLP (launch-bound: helios's own cost
   shows) and a wide MLP (compute-bound). Runs alternate; medians; after every run both
   sides' weights must agree (same work on the same batches).
2. **Mover**: microseconds per call to move a nested batch to the GPU and wait for it:
   ``helios.core.to_device``, a handwritten recursive ``tensor.to`` and optree's
   ``tree_map`` (when optree is importable), for a batch of many small tensors and one of
   a few large ones, from pinned and from pageable memory.
3. **Bandwidth**: host-to-device GB/s of the mover on a 256 MB batch against the copy
   limit measured on this machine (one ``copy_`` of a 256 MB buffer into preallocated GPU
   memory, the ``cudaMemcpyAsync`` ceiling), timed with CUDA events.
4. **Prefetch**: an input-bound model (each step copies a 64 MB batch; its compute is
   sized from measured times to take about 1.5 times the copy) trained by helios with
   ``CUDAPlugin(prefetch=True)``, with ``CUDAPlugin()`` (copy on the compute stream), and
   with the data already on the GPU. The target: prefetching within 5% of the data already
   on the GPU.

Step loops are timed with the wall clock between two ``torch.cuda.synchronize()`` calls
(the host's work is part of a step); copies with CUDA events.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.util
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

import helios.core as hlc
import helios.plugins as hlp
from helios.core import TrainingState
from helios.data import DataModule
from helios.model import Model
from helios.trainer import Trainer

DEVICE = torch.device("cuda", 0)
Batch = tuple[torch.Tensor, torch.Tensor]
Rows = list[dict[str, Any]]


def sync() -> None:
    torch.cuda.synchronize(DEVICE)


def median_us(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1e6


# -- data and models shared by the training sections --------------------------------------


class Ready(Dataset[Batch]):
    """Whole batches made up front; a loader with ``batch_size=None`` hands them out."""

    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> Batch:
        return self.batches[index]


def make_batches(count: int, size: int, features: int, *, device: str = "pinned") -> list[Batch]:
    generator = torch.Generator().manual_seed(count * size + features)
    out: list[Batch] = []
    for _ in range(count):
        x = torch.randn(size, features, generator=generator)
        y = torch.randint(0, 10, (size,), generator=generator)
        if device == "pinned":
            x, y = x.pin_memory(), y.pin_memory()
        elif device == "cuda":
            x, y = x.to(DEVICE), y.to(DEVICE)
        out.append((x, y))
    return out


def loader_of(batches: list[Batch]) -> DataLoader[Batch]:
    return DataLoader(Ready(batches), batch_size=None)


def mlp(widths: Sequence[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).to(DEVICE)


class Work:
    """A network's initial weights, so that every run starts from the same ones."""

    def __init__(self, widths: Sequence[int]) -> None:
        torch.manual_seed(0)
        self.widths = tuple(widths)
        self.initial = {k: v.clone() for k, v in mlp(widths).state_dict().items()}

    def fresh(self) -> tuple[nn.Module, torch.optim.Optimizer]:
        net = mlp(self.widths)
        net.load_state_dict(self.initial)
        return net, torch.optim.SGD(net.parameters(), lr=1e-3)


def step(
    net: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> None:
    loss = F.cross_entropy(net(x), y)
    optimizer.zero_grad()
    torch.autograd.backward(loss)
    optimizer.step()


def run_by_hand(work: Work, loader: DataLoader[Batch], steps: int) -> tuple[float, nn.Module]:
    """The floor: a plain loop moving each batch with ``tensor.to`` (asynchronous when
    pinned, as helios's mover does)."""
    net, optimizer = work.fresh()
    gc.collect()
    sync()
    start = time.perf_counter()
    done = 0
    while done < steps:
        for x, y in loader:
            x = x.to(DEVICE, non_blocking=x.is_pinned())
            y = y.to(DEVICE, non_blocking=y.is_pinned())
            step(net, optimizer, x, y)
            done += 1
            if done == steps:
                break
    sync()
    return time.perf_counter() - start, net


class Timed(Model):
    """Does in ``train_step`` what the floor does; times the training loop."""

    def __init__(self, work: Work) -> None:
        super().__init__("gpu_benchmark")
        self.net, self.optimizer = work.fresh()
        self.started = self.ended = 0.0

    def on_training_start(self) -> None:
        sync()
        self.started = time.perf_counter()

    def on_training_end(self) -> None:
        sync()
        self.ended = time.perf_counter()

    def train_step(self, batch: Batch, state: TrainingState) -> None:
        step(self.net, self.optimizer, *batch)


class Given(DataModule):
    def __init__(self, loader: DataLoader[Batch]) -> None:
        super().__init__()
        self.loader = loader

    def train_dataloader(self) -> DataLoader[Batch]:
        return self.loader


def run_helios(
    work: Work, loader: DataLoader[Batch], steps: int, *, prefetch: bool
) -> tuple[float, nn.Module]:
    trainer = Trainer(gpus=[0], train_unit="iteration", total_steps=steps)
    hlp.CUDAPlugin(prefetch=prefetch).configure_trainer(trainer)
    model = Timed(work)
    gc.collect()
    trainer.fit(model, Given(loader))
    if trainer.state.global_iteration != steps:
        raise RuntimeError(f"helios ran {trainer.state.global_iteration} steps, not {steps}")
    return model.ended - model.started, model.net


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(
        torch.allclose(p, q, rtol=1e-5, atol=1e-7)
        for p, q in zip(a.parameters(), b.parameters(), strict=True)
    )


Runner = Callable[[], tuple[float, nn.Module]]


def alternate(runners: dict[str, Runner], runs: int, steps: int) -> dict[str, float]:
    """Median microseconds per step of each runner, run in turn ``runs`` times (after one
    warm-up round); every run's weights must match the first runner's."""
    for runner in runners.values():
        runner()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(runs):
        nets = {}
        for name, runner in runners.items():
            seconds, nets[name] = runner()
            times[name].append(seconds / steps)
        first, *others = nets.values()
        if not all(same_weights(first, net) for net in others):
            raise RuntimeError("the runs ended with different weights: not the same work")
    return {name: median_us(samples) for name, samples in times.items()}


# -- 1. step time --------------------------------------------------------------------------


def step_section(quick: bool) -> Rows:
    cases = [
        ("tiny MLP 64-32-10, batch 32", (64, 32, 10), 64, 32, 200 if quick else 1000),
        ("MLP 2048x3-10, batch 2048", (2048, 2048, 2048, 2048, 10), 4, 2048, 10 if quick else 40),
    ]
    runs = 2 if quick else 5
    rows: Rows = []
    for name, widths, count, size, steps in cases:
        work = Work(widths)
        loader = loader_of(make_batches(count, size, widths[0]))
        medians = alternate(
            {
                "by hand": functools.partial(run_by_hand, work, loader, steps),
                "helios": functools.partial(run_helios, work, loader, steps, prefetch=False),
                "helios prefetch": functools.partial(
                    run_helios, work, loader, steps, prefetch=True
                ),
            },
            runs,
            steps,
        )
        floor = medians["by hand"]
        for side, us in medians.items():
            rows.append(
                {"section": "step", "case": name, "side": side, "us": us, "ratio": us / floor}
            )
    return rows


# -- 2. the mover --------------------------------------------------------------------------


def nested_batch(large: bool, pinned: bool) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(1)
    if large:
        tensors = [torch.randn(4_000_000, generator=generator) for _ in range(4)]
        batch: dict[str, Any] = {"inputs": tensors, "labels": torch.arange(4096)}
    else:
        batch = {
            "inputs": [torch.randn(256, generator=generator) for _ in range(12)],
            "pair": (torch.zeros(32, dtype=torch.long), torch.ones(32)),
            "meta": {"mask": torch.ones(64, dtype=torch.bool), "ids": list(range(8))},
            "name": "batch",
        }
    if pinned:
        batch = hlc.tree_map(lambda x: x.pin_memory() if torch.is_tensor(x) else x, batch)
    return batch


def by_hand(node: Any) -> Any:
    """What one writes without a tree library (dicts, lists and tuples only)."""
    if isinstance(node, torch.Tensor):
        return node.to(DEVICE, non_blocking=node.is_pinned())
    if isinstance(node, dict):
        return {key: by_hand(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return type(node)(by_hand(value) for value in node)
    return node


def movers() -> dict[str, Callable[[Any], Any]]:
    found: dict[str, Callable[[Any], Any]] = {
        "helios to_device": hlc.to_device(DEVICE),
        "tensor.to by hand": by_hand,
    }
    if importlib.util.find_spec("optree") is not None:
        import optree

        def move(leaf: Any) -> Any:
            if isinstance(leaf, torch.Tensor):
                return leaf.to(DEVICE, non_blocking=leaf.is_pinned())
            return leaf

        found["optree tree_map"] = lambda batch: optree.tree_map(move, batch, none_is_leaf=True)
    return found


def time_calls(fn: Callable[[], object], calls: int, repeats: int) -> float:
    """Median seconds per call (each call waited for) over ``repeats`` samples."""
    samples = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
            sync()
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def mover_section(quick: bool) -> Rows:
    rows: Rows = []
    for large in (False, True):
        for pinned in (True, False):
            batch = nested_batch(large, pinned)
            expected = hlc.to_device("cpu")(batch)
            calls = (5 if large else 200) // (4 if quick else 1)
            for name, mover in movers().items():
                moved = mover(batch)
                sync()
                if not all(torch.equal(a, b.cpu()) for a, b in _tensor_pairs(expected, moved)):
                    raise RuntimeError(f"{name} moved the batch wrongly")
                seconds = time_calls(functools.partial(mover, batch), calls, 3 if quick else 7)
                rows.append(
                    {
                        "section": "mover",
                        "batch": "4 x 16 MB" if large else "16 small tensors",
                        "memory": "pinned" if pinned else "pageable",
                        "mover": name,
                        "us": seconds * 1e6,
                    }
                )
    return rows


def _tensor_pairs(a: Any, b: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    left = [x for x in hlc.tree_leaves(a) if torch.is_tensor(x)]
    right = [x for x in hlc.tree_leaves(b) if torch.is_tensor(x)]
    if len(left) != len(right) or not all(x.device == DEVICE for x in right):
        raise RuntimeError("the moved batch has other tensors, or some not on the GPU")
    return list(zip(left, right, strict=True))


# -- 3. bandwidth ------------------------------------------------------------------------------


def event_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of ``fn``'s GPU work, between two CUDA events."""
    samples = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        sync()
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(float(start.elapsed_time(end)))
    return statistics.median(samples)


def bandwidth_section(quick: bool) -> Rows:
    numel = 64 * 2**20  # 256 MB of float32
    size = numel * 4
    repeats = 3 if quick else 10
    pinned = torch.randn(numel).pin_memory()
    pageable = pinned.clone()
    target = torch.empty(numel, device=DEVICE)
    mover = hlc.to_device(DEVICE)
    split_pinned = list(pinned.chunk(16))
    split_pageable = list(pageable.chunk(16))
    cases: list[tuple[str, Callable[[], object]]] = [
        ("copy_ limit, pinned", lambda: target.copy_(pinned, non_blocking=True)),
        ("copy_, pageable", lambda: target.copy_(pageable)),
        ("helios mover, pinned (16 tensors)", lambda: mover(split_pinned)),
        ("helios mover, pageable (16 tensors)", lambda: mover(split_pageable)),
    ]
    rows: Rows = []
    for name, fn in cases:
        fn()  # warm-up: allocations, first-call paths
        ms = event_ms(fn, repeats)
        rows.append({"section": "bandwidth", "copy": name, "ms": ms, "gbps": size / ms / 1e6})
    limit = rows[0]["gbps"]
    for row in rows:
        row["of_limit"] = row["gbps"] / limit
    return rows


# -- 4. prefetch -----------------------------------------------------------------------------


def prefetch_section(quick: bool) -> Rows:
    size, features = 2048, 8192  # 64 MB of float32 per batch
    host = make_batches(4, size, features)
    on_gpu = [(x.to(DEVICE), y.to(DEVICE)) for x, y in host]
    copy_ms = event_ms(lambda: [t.to(DEVICE, non_blocking=True) for t in host[0]], 5)
    # Size the hidden layer so that a step computes for about 1.5 copies.
    probe = Work((features, 512, 10))
    net, optimizer = probe.fresh()
    x, y = on_gpu[0]
    step(net, optimizer, x, y)
    probe_ms = event_ms(lambda: step(net, optimizer, x, y), 5)
    hidden = int(min(max(512 * 1.5 * copy_ms / probe_ms, 64), 16384)) // 64 * 64
    work = Work((features, hidden, 10))
    steps = 15 if quick else 60
    pinned_loader, gpu_loader = loader_of(host), loader_of(on_gpu)
    medians = alternate(
        {
            "data already on the GPU": functools.partial(
                run_helios, work, gpu_loader, steps, prefetch=False
            ),
            "prefetch": functools.partial(run_helios, work, pinned_loader, steps, prefetch=True),
            "no prefetch": functools.partial(
                run_helios, work, pinned_loader, steps, prefetch=False
            ),
        },
        2 if quick else 5,
        steps,
    )
    floor = medians["data already on the GPU"]
    note = f"batch 64 MB (copy {copy_ms:.2f} ms), hidden {hidden}"
    return [
        {"section": "prefetch", "side": side, "us": us, "ratio": us / floor, "note": note}
        for side, us in medians.items()
    ]


# -- report -----------------------------------------------------------------------------------


def print_rows(title: str, rows: Rows, columns: Sequence[tuple[str, str, str]]) -> None:
    """Print ``rows`` as a table; each column is (label, key, format), text left-aligned."""
    cells = [[format(row[key], fmt) for _, key, fmt in columns] for row in rows]
    widths = [
        max([len(label), *(len(line[i]) for line in cells)])
        for i, (label, _, _) in enumerate(columns)
    ]
    text = [fmt == "" for _, _, fmt in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.ljust(width) if left else value.rjust(width)
            for value, width, left in zip(values, widths, text, strict=True)
        ).rstrip()

    print(f"\n{title}")
    print(line([label for label, _, _ in columns]))
    for values in cells:
        print(line(values))


def summary(results: dict[str, Rows]) -> list[dict[str, str]]:
    """The few numbers that have targets, for the one-table report."""
    out: list[dict[str, str]] = []
    for row in results["step"]:
        if row["side"] != "by hand":
            out.append(
                {
                    "what": f"step {row['side']} / by hand: {row['case']}",
                    "value": f"{row['ratio']:.3f}x ({row['us']:.1f} us)",
                    "target": "<= 1.02x",
                    "verdict": _verdict(row["ratio"] <= 1.02),
                }
            )
    for row in results["bandwidth"][2:3]:
        out.append(
            {
                "what": "mover H2D bandwidth, pinned / copy_ limit",
                "value": f"{row['of_limit']:.2f} ({row['gbps']:.1f} GB/s)",
                "target": "",
                "verdict": "",
            }
        )
    for row in results["prefetch"]:
        if row["side"] != "data already on the GPU":
            target = row["side"] == "prefetch"
            out.append(
                {
                    "what": f"input-bound step, {row['side']} / data on GPU",
                    "value": f"{row['ratio']:.3f}x ({row['us']:.0f} us)",
                    "target": "<= 1.05x" if target else "",
                    "verdict": _verdict(row["ratio"] <= 1.05) if target else "",
                }
            )
    return out


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py needs a CUDA GPU; torch.cuda.is_available() is False here")
        return 1
    torch.cuda.set_device(DEVICE)
    print(f"{torch.cuda.get_device_name(DEVICE)}, torch {torch.__version__}", flush=True)
    results: dict[str, Rows] = {}
    for name, section in (
        ("step", step_section),
        ("mover", mover_section),
        ("bandwidth", bandwidth_section),
        ("prefetch", prefetch_section),
    ):
        started = time.perf_counter()
        results[name] = section(args.quick)
        print(f"[{name}: {time.perf_counter() - started:.1f} s]", flush=True)
    print_rows(
        "step time, medians (us/step)",
        results["step"],
        [
            ("case", "case", ""),
            ("side", "side", ""),
            ("us", "us", ".1f"),
            ("/hand", "ratio", ".3f"),
        ],
    )
    print_rows(
        "mover, per call incl. waiting for the copy (us)",
        results["mover"],
        [
            ("batch", "batch", ""),
            ("memory", "memory", ""),
            ("mover", "mover", ""),
            ("us", "us", ".1f"),
        ],
    )
    print_rows(
        "host-to-device bandwidth, 256 MB (CUDA events, medians)",
        results["bandwidth"],
        [
            ("copy", "copy", ""),
            ("ms", "ms", ".2f"),
            ("GB/s", "gbps", ".1f"),
            ("of limit", "of_limit", ".2f"),
        ],
    )
    print_rows(
        f"prefetch, input-bound model ({results['prefetch'][0]['note']}), us/step",
        results["prefetch"],
        [("side", "side", ""), ("us", "us", ".0f"), ("/on GPU", "ratio", ".3f")],
    )
    report = {"device": torch.cuda.get_device_name(DEVICE), "torch": torch.__version__}
    if args.json is not None:
        args.json.write_text(
            json.dumps({**report, "results": results, "summary": summary(results)}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

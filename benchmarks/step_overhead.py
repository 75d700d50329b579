"""Per-step overhead of `helios.trainer.Trainer` over a handwritten PyTorch loop.

A tiny MLP (64 -> 32 -> 10, ReLU) trains on random data, batch 32, one CPU thread, in
two ways that do the same tensor work:

* the *floor*: a plain loop over the same `DataLoader` (move to the CPU, cast to float32,
  forward, cross-entropy, ``zero_grad``, ``backward``, SGD step), and
* *helios*: ``Trainer(train_unit="iteration", use_cpu=True).fit(model, datamodule)`` with
  a `Model` doing the same in ``train_step`` and three plug-ins: a `BatchPlugin` carrying
  ``compose(to_device(cpu), cast(float32))``, a plug-in that only counts lifecycle hooks,
  and a plug-in that claims ``should_training_stop`` and always answers ``False``.

Two scenarios: no validation, and a validation pass (4 fixed batches, under
``torch.no_grad``) every 100 steps. A third table compares 2-rank gloo DDP training: helios
against a handwritten DDP loop in the same two processes (see ``step_overhead_ddp.py``;
``--no-ddp`` skips it). Runs alternate floor / helios (ABAB...); the table
shows medians of microseconds per step and the ratio helios / floor. After every pair the
two networks' final parameters must be bit-identical: both sides did the same work on the
same batches.

What is timed: for the floor, from ``net.train()`` to the end of its loop; for helios,
from the model's ``on_training_start`` hook to its ``on_training_end`` hook, i.e. the
trainer's whole training loop (epoch iterators, per-batch bookkeeping, hooks, plug-in
dispatch, stop checks, validation). Trainer construction, plug-in registration and the
set-up inside ``fit`` (data module, dispatch plan) are outside it. The ``fit`` column
times the whole ``fit`` call, with nothing subtracted, for reference.

The clock is the process's CPU time (`time.process_time`) by default: with one torch
thread and no loader workers it counts exactly the work done, and not the time spent
descheduled, which on a busy machine swamps a difference of a few percent in wall time.
``--clock wall`` uses `time.perf_counter` instead.

Even so a few percent is near the noise, so a second table repeats both loops *without
the tensor work* (pre-collated batches from a trivial loader; the transforms, hooks and
validation passes stay, forward/backward/step go): the difference is helios's own cost
per step, measured precisely, and ``projected`` is ``1 + overhead / floor`` with the
floor of the first table. ``--breakdown`` adds the wall time of each per-step piece
called alone (best of several `timeit` repeats).

Usage::

    python benchmarks/step_overhead.py               # 7 runs each, 2000 steps
    python benchmarks/step_overhead.py --clock wall  # wall time instead of CPU time
    python benchmarks/step_overhead.py --runs 11 --steps 5000
    python benchmarks/step_overhead.py --quick       # fast sanity run
    python benchmarks/step_overhead.py --breakdown   # also time each per-step piece
    python benchmarks/step_overhead.py --profile     # cProfile one helios run
    python benchmarks/step_overhead.py --no-ddp      # without the 2-rank DDP scenario
    python benchmarks/step_overhead.py --ddp-runs 81 --ddp-steps 300
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import helios.core as hlc
import helios.plugins as hlp
from helios.core import TrainingState
from helios.core.loop import BatchRan, Loop, Start, step
from helios.data import DataModule
from helios.model import Model
from helios.trainer import Trainer

IN_FEATURES = 64
HIDDEN = 32
CLASSES = 10
BATCH = 32
TRAIN_BATCHES = 250  # per epoch: 2000 steps cross several epoch boundaries
VALID_BATCHES = 4
VALID_EVERY = 100
LR = 0.01
DEVICE = torch.device("cpu")

Batch = list[torch.Tensor]
Transform = Callable[[Batch], Batch]
Clock = Callable[[], float]


# -- shared set-up ----------------------------------------------------------------------


class Collated(Dataset[Batch]):
    """Ready-made batches; with ``batch_size=None`` a loader hands them out one by one."""

    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> Batch:
        return self.batches[index]


class Setup:
    """Data, loaders, initial weights, transform and clock, shared by both sides.

    Args:
        clock: What times the runs.
        work: ``False`` for the skeleton: trivial loaders over pre-collated batches, and
            no forward / backward / optimiser step on either side.
        seed: Seed of the data and of the initial weights.
    """

    def __init__(self, clock: Clock, work: bool = True, seed: int = 0) -> None:
        self.clock = clock
        self.work = work
        generator = torch.Generator().manual_seed(seed)
        n_train = TRAIN_BATCHES * BATCH
        n_valid = VALID_BATCHES * BATCH
        train = TensorDataset(
            torch.randn(n_train, IN_FEATURES, generator=generator),
            torch.randint(0, CLASSES, (n_train,), generator=generator),
        )
        valid = TensorDataset(
            torch.randn(n_valid, IN_FEATURES, generator=generator),
            torch.randint(0, CLASSES, (n_valid,), generator=generator),
        )
        # One loader each, iterated by both sides (no shuffling: same batches, same order).
        self.train_loader: DataLoader[Any] = DataLoader(train, batch_size=BATCH, shuffle=False)
        self.valid_loader: DataLoader[Any] = DataLoader(valid, batch_size=BATCH, shuffle=False)
        if not work:
            self.train_loader = DataLoader(Collated(list(self.train_loader)), batch_size=None)
            self.valid_loader = DataLoader(Collated(list(self.valid_loader)), batch_size=None)
        torch.manual_seed(seed)
        self.initial = {k: v.clone() for k, v in make_net().state_dict().items()}
        self.transform: Transform = hlc.compose(hlc.to_device(DEVICE), hlc.cast(torch.float32))

    def fresh_net(self) -> nn.Module:
        net = make_net()
        net.load_state_dict(self.initial)
        return net


def make_net() -> nn.Module:
    return nn.Sequential(nn.Linear(IN_FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES)).to(
        DEVICE
    )


class Run:
    """One timed run: seconds of the loop (and of ``fit``), the network, validations."""

    def __init__(self, loop: float, fit: float, net: nn.Module, passes: int) -> None:
        self.loop = loop
        self.fit = fit
        self.net = net
        self.passes = passes


# -- (a) the floor ----------------------------------------------------------------------


def run_floor(setup: Setup, steps: int, validate: bool) -> Run:
    """Train by hand."""
    net = setup.fresh_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    loader = setup.train_loader
    valid_loader = setup.valid_loader
    device = DEVICE
    work = setup.work
    clock = setup.clock
    passes = 0
    gc.collect()
    start = clock()
    net.train()
    step = 0
    while step < steps:
        for batch in loader:
            x, y = batch
            # What compose(to_device(cpu), cast(float32)) does, written by hand.
            x = x.to(device)
            y = y.to(device)
            x = x.to(torch.float32)
            if work:
                loss = F.cross_entropy(net(x), y)
                optimizer.zero_grad()
                torch.autograd.backward(loss)  # loss.backward(), typed
                optimizer.step()
            step += 1
            if validate and step % VALID_EVERY == 0:
                net.eval()
                with torch.no_grad():
                    total = torch.zeros(())
                    for vbatch in valid_loader:
                        vx, vy = vbatch
                        vx = vx.to(device)
                        vy = vy.to(device)
                        vx = vx.to(torch.float32)
                        if work:
                            total += F.cross_entropy(net(vx), vy)
                net.train()
                passes += 1
            if step >= steps:
                break
    seconds = clock() - start
    return Run(seconds, seconds, net, passes)


# -- (b) helios -------------------------------------------------------------------------


class MLPModel(Model):
    """Does in `train_step` / `valid_step` exactly what the floor loop does."""

    def __init__(self, net: nn.Module, clock: Clock, work: bool) -> None:
        super().__init__("step_overhead")
        self.net = net
        self.optimizer = torch.optim.SGD(net.parameters(), lr=LR)
        self.clock = clock
        self.work = work
        self.loop_start = 0.0
        self.loop_end = 0.0
        self.valid_total = torch.zeros(())

    def train(self) -> None:
        self.net.train()

    def eval(self) -> None:
        self.net.eval()

    def on_training_start(self) -> None:
        self.loop_start = self.clock()

    def on_training_end(self) -> None:
        self.loop_end = self.clock()

    def train_step(self, batch: Batch, state: TrainingState) -> None:
        x, y = batch
        if self.work:
            loss = F.cross_entropy(self.net(x), y)
            self.optimizer.zero_grad()
            torch.autograd.backward(loss)
            self.optimizer.step()

    def on_validation_start(self, validation_cycle: int) -> None:
        self.valid_total = torch.zeros(())

    def valid_step(self, batch: Batch, step: int) -> None:
        x, y = batch
        if self.work:
            self.valid_total += F.cross_entropy(self.net(x), y)


class FixedData(DataModule):
    def __init__(self, setup: Setup, validate: bool) -> None:
        super().__init__()
        self._setup = setup
        self._validate = validate

    def train_dataloader(self) -> DataLoader[Any] | None:
        return self._setup.train_loader

    def valid_dataloader(self) -> DataLoader[Any] | None:
        return self._setup.valid_loader if self._validate else None


class HookCounter(hlp.Plugin):
    """Only observes: counts the lifecycle hooks it sees."""

    def __init__(self) -> None:
        super().__init__("hook_counter")
        self.counts: dict[str, int] = {
            "training_start": 0,
            "training_end": 0,
            "validation_start": 0,
            "validation_end": 0,
        }

    def on_training_start(self) -> None:
        self.counts["training_start"] += 1

    def on_training_end(self) -> None:
        self.counts["training_end"] += 1

    def on_validation_start(self, validation_cycle: int, /) -> None:
        self.counts["validation_start"] += 1

    def on_validation_end(self, validation_cycle: int, /) -> None:
        self.counts["validation_end"] += 1


class NeverStop(hlp.Plugin):
    """Claims ``should_training_stop`` and always answers no."""

    def __init__(self) -> None:
        super().__init__("never_stop")
        self.unique_overrides.should_training_stop = True

    def should_training_stop(self) -> bool:
        return False


class HeliosRun:
    """A trainer with the three plug-ins, its model and data module, ready to `fit`."""

    def __init__(self, setup: Setup, steps: int, validate: bool) -> None:
        self.steps = steps
        self.trainer = Trainer(
            train_unit="iteration",
            total_steps=steps,
            valid_frequency=VALID_EVERY if validate else None,
            use_cpu=True,
        )
        prep = hlp.BatchPlugin("prep", training=setup.transform, validation=setup.transform)
        self.prep = prep
        self.counter = HookCounter()
        self.stopper = NeverStop()
        for plugin in (prep, self.counter, self.stopper):
            self.trainer.register_plugin(plugin)
        self.model = MLPModel(setup.fresh_net(), setup.clock, setup.work)
        self.data = FixedData(setup, validate)

    def check(self) -> None:
        counts = self.counter.counts
        if counts["training_start"] != 1 or counts["training_end"] != 1:
            raise RuntimeError(f"unexpected hook counts {counts}")
        if counts["validation_start"] != counts["validation_end"]:
            raise RuntimeError(f"unexpected hook counts {counts}")
        if self.trainer.state.global_iteration != self.steps:
            raise RuntimeError(
                f"helios ran {self.trainer.state.global_iteration} steps, not {self.steps}"
            )


def run_helios(setup: Setup, steps: int, validate: bool) -> Run:
    """Train with helios."""
    run = HeliosRun(setup, steps, validate)
    gc.collect()
    start = setup.clock()
    run.trainer.fit(run.model, run.data)
    fit_seconds = setup.clock() - start
    run.check()
    return Run(
        run.model.loop_end - run.model.loop_start,
        fit_seconds,
        run.model.net,
        run.counter.counts["validation_start"],
    )


# -- driver -----------------------------------------------------------------------------


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


class Result:
    """Microseconds per step of each run of each side."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.floor: list[float] = []
        self.helios: list[float] = []
        self.fit: list[float] = []

    @property
    def floor_median(self) -> float:
        return statistics.median(self.floor)

    @property
    def helios_median(self) -> float:
        return statistics.median(self.helios)

    @property
    def paired(self) -> float:
        """Median of the per-pair ratios helios / floor."""
        return statistics.median(h / f for h, f in zip(self.helios, self.floor, strict=True))


def measure(setup: Setup, name: str, steps: int, runs: int, validate: bool) -> Result:
    result = Result(name)
    # Warm-up (allocator, first-call paths), not recorded.
    warm = min(steps, 200)
    run_floor(setup, warm, validate)
    run_helios(setup, warm, validate)
    for _ in range(runs):
        floor = run_floor(setup, steps, validate)
        helios = run_helios(setup, steps, validate)
        if floor.passes != helios.passes:
            raise RuntimeError(f"validation passes differ: {floor.passes} vs {helios.passes}")
        if setup.work and not same_weights(floor.net, helios.net):
            raise RuntimeError("floor and helios ended with different weights: not the same work")
        result.floor.append(floor.loop / steps * 1e6)
        result.helios.append(helios.loop / steps * 1e6)
        result.fit.append(helios.fit / steps * 1e6)
    return result


def print_tables(
    full: Sequence[Result], skeleton: Sequence[Result], steps: int, runs: int, clock: str
) -> None:
    print(
        f"step overhead: MLP {IN_FEATURES}->{HIDDEN}->{CLASSES}, batch {BATCH}, {steps} steps, "
        f"{runs} runs each (ABAB), torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread, {clock} clock; medians in us/step"
    )
    header = (
        f"{'scenario':<18} {'floor':>8} {'helios':>8} {'ratio':>7} {'paired':>7} "
        f"{'best':>7} {'fit':>8} {'fit/floor':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in full:
        fit = statistics.median(r.fit)
        print(
            f"{r.name:<18} {r.floor_median:8.1f} {r.helios_median:8.1f} "
            f"{r.helios_median / r.floor_median:6.3f}x {r.paired:6.3f}x "
            f"{min(r.helios) / min(r.floor):6.3f}x {fit:8.1f} {fit / r.floor_median:8.3f}x"
        )
    print(
        "ratio = median(helios) / median(floor); paired = median of per-pair ratios;\n"
        "best = min(helios) / min(floor); helios = the training loop "
        "(on_training_start..on_training_end); fit = the whole fit() call"
    )
    print()
    print(
        f"without the tensor work ({len(skeleton[0].floor)} runs each): helios's own "
        "cost per step; projected = 1 + overhead / floor above"
    )
    header = (
        f"{'scenario':<18} {'floor':>8} {'helios':>8} {'overhead':>9} {'best':>7} {'projected':>9}"
    )
    print(header)
    print("-" * len(header))
    for r, f in zip(skeleton, full, strict=True):
        overhead = r.helios_median - r.floor_median
        best = min(r.helios) - min(r.floor)
        print(
            f"{r.name:<18} {r.floor_median:8.2f} {r.helios_median:8.2f} {overhead:9.2f} "
            f"{best:7.2f} {1 + overhead / f.floor_median:8.3f}x"
        )
    print("overhead = median(helios) - median(floor); best = min(helios) - min(floor); us/step")


def breakdown(setup: Setup) -> None:
    """Time each piece of helios's per-step work (and the floor's counterpart) alone."""
    run = HeliosRun(setup, 2000, validate=False)
    batch: Batch = next(iter(setup.train_loader))
    x, y = batch
    state = TrainingState(5, 5, 0, 0, 5, 0, 0.001, 5)
    config = run.trainer.config
    model, prep, stopper = run.model, run.prep, run.stopper
    to_device = hlc.to_device(DEVICE)
    cast = hlc.cast(torch.float32)
    device = DEVICE
    float32 = torch.float32
    clock = time.perf_counter

    def hooks() -> None:
        model.on_training_batch_start(state)
        model.on_training_batch_end(state, False)

    running, _ = step(Loop(state), config, Start())
    pieces: list[tuple[str, Callable[[], object]]] = [
        ("loop core: step(BatchRan)", lambda: step(running, config, BatchRan(0.001, False))),
        ("  TrainingState(...)", lambda: TrainingState(5, 5, 0, 0, 5, 0, 0.001, 5)),
        ("BatchPlugin.process_training_batch", lambda: prep.process_training_batch(batch, state)),
        ("  to_device(cpu)(batch)", lambda: to_device(batch)),
        ("  cast(float32)(batch)", lambda: cast(batch)),
        (
            "floor: x.to(cpu), y.to(cpu), x.to(f32)",
            lambda: (x.to(device), y.to(device), x.to(float32)),
        ),
        (
            "stop checks (plug-in + model)",
            lambda: stopper.should_training_stop() or model.should_training_stop(),
        ),
        ("time.perf_counter() x2", lambda: (clock(), clock())),
        ("model batch start/end hooks", hooks),
        ("empty lambda (subtract from each)", lambda: None),
    ]
    number, rounds = 5000, 25
    best = [float("inf")] * len(pieces)
    # Round robin, so that a busy spell of the machine hits every piece alike.
    for _ in range(rounds):
        for i, (_, fn) in enumerate(pieces):
            best[i] = min(best[i], timeit.timeit(fn, number=number) / number * 1e6)
    print(f"per-call wall time, best of {rounds} x {number} calls (includes one lambda call)")
    for (name, _), cost in zip(pieces, best, strict=True):
        print(f"  {name:<42} {cost:7.3f} us")


def profile(setup: Setup, steps: int, validate: bool, top: int) -> None:
    run_helios(setup, min(steps, 200), validate)
    run = HeliosRun(setup, steps, validate)
    profiler = cProfile.Profile()
    profiler.enable()
    run.trainer.fit(run.model, run.data)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)
    print("helios's own functions:")
    stats.print_stats(r"[/\\]helios[/\\]", top)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=None, help="runs of each side (default 7)")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default 2000)")
    parser.add_argument("--quick", action="store_true", help="fast sanity run (3 x 300 steps)")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: time.process_time (default; ignores time spent descheduled on a busy "
        "machine); wall: time.perf_counter",
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each per-step piece alone"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one helios run (with validation)"
    )
    parser.add_argument("--top", type=int, default=30, help="rows of the profile to print")
    parser.add_argument("--no-ddp", action="store_true", help="skip the 2-rank gloo DDP scenario")
    parser.add_argument(
        "--ddp-runs",
        type=int,
        default=None,
        help="pairs of DDP runs (default 41: many short pairs pair best on a busy machine)",
    )
    parser.add_argument("--ddp-steps", type=int, default=300, help="steps per DDP run")
    args = parser.parse_args(argv)
    runs: int = args.runs if args.runs is not None else (3 if args.quick else 7)
    steps: int = args.steps if args.steps is not None else (300 if args.quick else 2000)
    if runs < 1 or steps < 1:
        parser.error("--runs and --steps must be positive")
    clock: Clock = time.process_time if args.clock == "cpu" else time.perf_counter

    torch.set_num_threads(1)
    setup = Setup(clock)
    if args.profile:
        profile(setup, steps, validate=True, top=args.top)
        return 0
    scenarios = (("no validation", False), (f"valid every {VALID_EVERY}", True))
    full = [measure(setup, name, steps, runs, validate) for name, validate in scenarios]
    bare = Setup(clock, work=False)
    skeleton = [measure(bare, name, steps, 3 * runs, validate) for name, validate in scenarios]
    print_tables(full, skeleton, steps, runs, args.clock)
    if not args.no_ddp:
        # The sibling module is importable by its package path (its spawned workers need it).
        root = str(Path(__file__).resolve().parents[1])
        if root not in sys.path:
            sys.path.insert(0, root)
        from benchmarks.step_overhead_ddp import measure_ddp, print_ddp_table

        ddp_runs: int = args.ddp_runs if args.ddp_runs is not None else (7 if args.quick else 41)
        print()
        print_ddp_table(measure_ddp(args.ddp_steps, ddp_runs))
    if args.breakdown:
        print()
        breakdown(setup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

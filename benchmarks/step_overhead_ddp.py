"""The 2-rank gloo DDP scenario of ``step_overhead.py``: helios against a handwritten DDP
loop, in the same two processes, on the same shards of the same data.

Two worker processes join one gloo group (a file store, gloo on loopback), then each
alternates, pair after pair (the order flipping every pair), between

* the *floor*: a handwritten DDP loop: a `DistributedSampler` shard of the data
  (no shuffling), batch 32, the same cast as the main scenarios, forward, cross-entropy,
  ``zero_grad``, ``backward`` (DDP's all-reduce), SGD step; and
* *helios*: ``Trainer(train_unit="iteration", use_cpu=True).fit`` joining the existing
  group (as it does under ``torchrun``), with a `Model` that wraps the network with
  ``wrap_distributed`` and does the same in ``train_step``, and two plug-ins: a
  `BatchPlugin` with ``compose(to_device(cpu), cast(float32))`` and one that counts
  lifecycle hooks. No plug-in claims ``should_training_stop``, so no per-batch collective
  beyond DDP's: the same communication as the floor.

Many short runs (300 steps, about a second each) pair better than a few long ones on a
busy machine, whose load changes over seconds. Both sides start from the same weights,
and after every pair their final weights must be bit-identical. Times are rank 0's, of
the training loop (for helios from the model's ``on_training_start`` to its
``on_training_end`` hook), on two clocks: wall time
(``time.perf_counter``, which includes the waits for the other rank in every step) and
the process's CPU time (``time.process_time``, all its threads, gloo's included: the work
done, not the time spent descheduled, which on a busy machine swamps a few percent).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import helios.core as hlc
import helios.plugins as hlp
from helios.core import TrainingState
from helios.data import DataModule
from helios.model import Model
from helios.trainer import Trainer

__all__ = ["DDPResult", "measure_ddp", "print_ddp_table"]

WORLD = 2
IN_FEATURES, HIDDEN, CLASSES, BATCH, LR = 64, 32, 10, 32, 0.01
#: Batches of the whole data set; each rank sees half of them an epoch.
TRAIN_BATCHES = 500


class DDPResult:
    """Microseconds per step of each run of each side, on one clock (rank 0's)."""

    def __init__(self, clock: str, floor: list[float], helios: list[float], steps: int) -> None:
        self.clock = clock
        self.floor = floor
        self.helios = helios
        self.steps = steps

    @property
    def paired(self) -> float:
        """Median of the per-pair ratios helios / floor."""
        return statistics.median(h / f for h, f in zip(self.helios, self.floor, strict=True))


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clocks()
    return wall - start[0], cpu - start[1]


def dataset(seed: int = 0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    size = TRAIN_BATCHES * BATCH
    return TensorDataset(
        torch.randn(size, IN_FEATURES, generator=generator),
        torch.randint(0, CLASSES, (size,), generator=generator),
    )


def make_net() -> nn.Module:
    return nn.Sequential(nn.Linear(IN_FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES))


def fresh_net(initial: dict[str, torch.Tensor]) -> nn.Module:
    net = make_net()
    net.load_state_dict(initial)
    return net


def run_floor(data: TensorDataset, initial: dict[str, torch.Tensor], steps: int) -> Any:
    """Train by hand with DDP; ((wall, CPU) seconds, network)."""
    net = fresh_net(initial)
    ddp: nn.Module = nn.parallel.DistributedDataParallel(net)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=LR)
    rank = dist.get_rank()
    sampler: DistributedSampler[Any] = DistributedSampler(
        data, num_replicas=WORLD, rank=rank, shuffle=False, drop_last=False
    )
    loader = DataLoader(data, batch_size=BATCH, sampler=sampler)
    device = torch.device("cpu")
    dist.barrier()
    start = _clocks()
    ddp.train()
    step, epoch = 0, 0
    while step < steps:
        sampler.set_epoch(epoch)
        for x, y in loader:
            x = x.to(device)
            y = y.to(device)
            x = x.to(torch.float32)
            loss = F.cross_entropy(ddp(x), y)
            optimizer.zero_grad()
            torch.autograd.backward(loss)
            optimizer.step()
            step += 1
            if step >= steps:
                break
        epoch += 1
    return _since(start), net


class DDPModel(Model):
    """Does in `train_step` what the floor does; wraps its network in `setup`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__("step_overhead_ddp")
        self.net = net
        self.loop_start = (0.0, 0.0)
        self.loop = (0.0, 0.0)

    def setup(self, fast_init: bool = False) -> None:
        self.ddp = self.wrap_distributed(self.net)
        self.optimizer = torch.optim.SGD(self.ddp.parameters(), lr=LR)

    def train(self) -> None:
        self.ddp.train()

    def on_training_start(self) -> None:
        self.loop_start = _clocks()

    def on_training_end(self) -> None:
        self.loop = _since(self.loop_start)

    def train_step(self, batch: list[torch.Tensor], state: TrainingState) -> None:
        x, y = batch
        loss = F.cross_entropy(self.ddp(x), y)
        self.optimizer.zero_grad()
        torch.autograd.backward(loss)
        self.optimizer.step()


class PlainData(DataModule):
    """One plain loader (no shuffling): the trainer gives each rank its shard."""

    def __init__(self, data: TensorDataset) -> None:
        super().__init__()
        self.data = data

    def train_dataloader(self) -> DataLoader[Any] | None:
        return DataLoader(self.data, batch_size=BATCH, shuffle=False)


class HookCounter(hlp.Plugin):
    """Only observes: counts the training starts it sees."""

    def __init__(self) -> None:
        super().__init__("hook_counter")
        self.starts = 0

    def on_training_start(self) -> None:
        self.starts += 1


def run_helios(data: TensorDataset, initial: dict[str, torch.Tensor], steps: int) -> Any:
    """Train with helios in the existing group; ((wall, CPU) seconds, network)."""
    trainer = Trainer(train_unit="iteration", total_steps=steps, use_cpu=True)
    transform = hlc.compose(hlc.to_device(torch.device("cpu")), hlc.cast(torch.float32))
    counter = HookCounter()
    trainer.register_plugin(hlp.BatchPlugin("prep", training=transform))
    trainer.register_plugin(counter)
    model = DDPModel(fresh_net(initial))
    dist.barrier()
    trainer.fit(model, PlainData(data))
    if (
        counter.starts != 1
        or trainer.state.global_iteration != steps
        or not trainer.is_distributed
    ):
        raise RuntimeError(f"helios did not run {steps} distributed steps")
    return model.loop, model.net


def _worker(rank: int, store: str, steps: int, runs: int, results: Any) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        data = dataset()
        torch.manual_seed(0)
        initial = {k: v.clone() for k, v in make_net().state_dict().items()}
        # A warm-up pair (allocator, first-call paths, gloo buffers), not recorded.
        run_floor(data, initial, min(steps, 200))
        run_helios(data, initial, min(steps, 200))
        for index in range(runs):
            sides = (run_floor, run_helios) if index % 2 == 0 else (run_helios, run_floor)
            timed = {side.__name__: side(data, initial, steps) for side in sides}
            floor_seconds, floor_net = timed["run_floor"]
            helios_seconds, helios_net = timed["run_helios"]
            same = all(
                torch.equal(p, q)
                for p, q in zip(floor_net.parameters(), helios_net.parameters(), strict=True)
            )
            if rank == 0:
                results.put((floor_seconds, helios_seconds, same))
    finally:
        dist.destroy_process_group()


def measure_ddp(steps: int, runs: int) -> list[DDPResult]:
    """Run the scenario in two new processes; rank 0's times, wall then CPU."""
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    with tempfile.TemporaryDirectory() as folder:
        store = str(Path(folder) / "store")
        workers = [
            context.Process(target=_worker, args=(rank, store, steps, runs, results))
            for rank in range(WORLD)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if any(worker.exitcode != 0 for worker in workers):
            raise RuntimeError("a DDP benchmark worker failed (see its output above)")
    wall, cpu = DDPResult("wall", [], [], steps), DDPResult("cpu", [], [], steps)
    for _ in range(runs):
        floor_seconds, helios_seconds, same = results.get()
        if not same:
            raise RuntimeError("floor and helios ended with different weights: not the same work")
        for index, result in enumerate((wall, cpu)):
            result.floor.append(floor_seconds[index] / steps * 1e6)
            result.helios.append(helios_seconds[index] / steps * 1e6)
    return [wall, cpu]


def print_ddp_table(results: list[DDPResult]) -> None:
    first = results[0]
    print(
        f"2-rank DDP (gloo, CPU, 1 thread a rank): {first.steps} steps, {len(first.floor)} "
        "runs each (ABBA...), rank 0's clocks; medians in us/step"
    )
    header = f"{'scenario':<18} {'floor':>8} {'helios':>8} {'ratio':>7} {'paired':>7}"
    print(header)
    print("-" * len(header))
    for result in results:
        floor, helios = statistics.median(result.floor), statistics.median(result.helios)
        name = f"2-rank DDP, {result.clock}"
        print(
            f"{name:<18} {floor:8.1f} {helios:8.1f} {helios / floor:6.3f}x {result.paired:6.3f}x"
        )
    print(
        "floor = a handwritten DDP loop; paired = median of per-pair ratios helios / floor;\n"
        "wall = time.perf_counter, cpu = time.process_time of rank 0 (all its threads)"
    )

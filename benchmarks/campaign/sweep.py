"""Scenario 1: one training process, SIGKILLed at a seeded sweep of points."""

from __future__ import annotations

import io
import os
import random
import signal
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import attrs
import torch

import helios.trainer as hlt
from benchmarks.campaign.checkpoints import (
    Reference,
    inspect_checkpoints,
    leftovers,
)
from benchmarks.campaign.processes import (
    CHILD_TIMEOUT,
    SEED,
    finish,
    replace_attribute,
    run_forked,
    sigkill_self,
    start_forked,
    warm_up,
)
from benchmarks.campaign.results import CaseResult, Outcome, Tally
from benchmarks.campaign.workload import Classifier, ClassifierData, weights
from helios.core import TrainingState

SWEEP_NAME = "swept"
SWEEP_STEPS = 25
SWEEP_EVERY = 3
SWEEP_VALID_EVERY = 4
WRITE_KINDS = ("mid-write", "before-rename", "after-rename")


def sweep_trainer(root: Path, steps: int = SWEEP_STEPS) -> hlt.Trainer:
    """Deterministic CPU training with checkpoints every 3 iterations (mid-epoch)."""
    return hlt.Trainer(
        train_unit="iteration",
        total_steps=steps,
        chkpt_frequency=SWEEP_EVERY,
        valid_frequency=SWEEP_VALID_EVERY,
        chkpt_root=root,
        use_cpu=True,
        random_seed=5,
        enable_deterministic=True,
    )


def sweep_data() -> ClassifierData:
    """80 samples in shuffled batches of 8 from `DataModule.create_dataloader`."""
    return ClassifierData(size=80, batch_size=8)


class KillableModel(Classifier):
    """The helper classifier (dropout included) that SIGKILLs its own process at a
    training step or halfway through a validation pass; ``pace`` slows it down."""

    def __init__(
        self,
        save_name: str,
        *,
        kill_at_iteration: int | None = None,
        kill_in_cycle: int | None = None,
        pace: float = 0.0,
    ) -> None:
        super().__init__(save_name)
        self.kill_at_iteration = kill_at_iteration
        self.kill_in_cycle = kill_in_cycle
        self.pace = pace
        self.cycle = 0

    def train_step(self, batch: Any, state: TrainingState) -> None:
        if state.global_iteration == self.kill_at_iteration:
            sigkill_self()
        super().train_step(batch, state)
        if self.pace:
            time.sleep(self.pace)

    def on_validation_start(self, validation_cycle: int) -> None:
        super().on_validation_start(validation_cycle)
        self.cycle = validation_cycle

    def valid_step(self, batch: Any, step: int) -> None:
        if self.cycle == self.kill_in_cycle and step == 1:
            sigkill_self()
        super().valid_step(batch, step)


@attrs.frozen
class KillPoint:
    """Where a run dies.

    ``kind`` and ``at``: ``train-step`` (before training step ``at``), ``validation``
    (halfway through validation pass ``at``), ``mid-write`` (checkpoint write ``at`` has
    put half its bytes in the temporary file), ``before-rename`` (write ``at`` is
    complete and flushed, not yet renamed), ``after-rename`` (write ``at`` is renamed, the
    folder not yet flushed), ``external`` (the parent sends SIGKILL ``at`` ms after the
    first checkpoint appears, to a run slowed down to 30 ms a step), ``before-delete`` and
    ``after-delete`` (around the ``at``-th deletion of a checkpoint by a
    `helios.plugins.RetentionPlugin`; see `benchmarks.campaign.retention`).
    """

    kind: str
    at: int

    def __str__(self) -> str:
        return {
            "train-step": f"before training step {self.at}",
            "validation": f"inside validation pass {self.at}",
            "mid-write": f"checkpoint write {self.at}: half the bytes written",
            "before-rename": f"checkpoint write {self.at}: written, not renamed",
            "after-rename": f"checkpoint write {self.at}: renamed, folder not synced",
            "external": f"from outside, {self.at} ms after the first checkpoint",
            "before-delete": f"retention: before deleting checkpoint {self.at}",
            "after-delete": f"retention: right after deleting checkpoint {self.at}",
        }[self.kind]

    def completed_writes(self) -> int | None:
        """How many checkpoint writes end before the kill (``None``: not known)."""
        if self.kind == "train-step":
            return (self.at - 1) // SWEEP_EVERY
        if self.kind == "validation":
            # A validation pass comes before the checkpoint of the same iteration.
            return (SWEEP_VALID_EVERY * self.at - 1) // SWEEP_EVERY
        if self.kind in ("mid-write", "before-rename"):
            return self.at - 1
        if self.kind == "after-rename":
            return self.at
        return None


def kill_points(seed: int = SEED, count: int = 12) -> list[KillPoint]:
    """A seeded sweep: each kind of checkpoint-write kill, a validation kill, a kill from
    outside, and training steps drawn at random for the rest."""
    writes = SWEEP_STEPS // SWEEP_EVERY
    if not 5 < count <= 5 + SWEEP_STEPS:
        raise ValueError(f"count must be in 6..{5 + SWEEP_STEPS}, got {count}")
    rng = random.Random(seed)
    points = [KillPoint(kind, rng.randint(1, writes)) for kind in WRITE_KINDS]
    points.append(KillPoint("validation", rng.randint(1, SWEEP_STEPS // SWEEP_VALID_EVERY)))
    points.append(KillPoint("external", rng.randint(0, 250)))
    steps = rng.sample(range(1, SWEEP_STEPS + 1), count - len(points))
    points.extend(KillPoint("train-step", step) for step in sorted(steps))
    return points


def arm_write_kill(point: KillPoint) -> None:
    """In the child: SIGKILL this process at ``point``'s checkpoint write."""
    calls = 0
    if point.kind == "mid-write":
        real_save = torch.save

        def save(obj: object, f: Any, *args: Any, **kwargs: Any) -> None:
            nonlocal calls
            calls += 1
            if calls != point.at:
                real_save(obj, f, *args, **kwargs)
                return
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            sigkill_self()

        replace_attribute(torch, "save", save)
        return

    real_rename = os.replace

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        nonlocal calls
        if not str(dst).endswith(".pth"):
            real_rename(src, dst, **kwargs)
            return
        calls += 1
        if calls == point.at and point.kind == "before-rename":
            sigkill_self()
        real_rename(src, dst, **kwargs)
        if calls == point.at:
            sigkill_self()

    replace_attribute(os, "replace", replace)


def killable_model(point: KillPoint | None) -> KillableModel:
    """The sweep's model, armed to die at ``point`` when it is a training step or a
    validation pass (slowed down for a kill from outside)."""
    return KillableModel(
        SWEEP_NAME,
        kill_at_iteration=point.at if point and point.kind == "train-step" else None,
        kill_in_cycle=point.at if point and point.kind == "validation" else None,
        pace=0.03 if point and point.kind == "external" else 0.0,
    )


def _train(root: str, out: str, point: KillPoint | None) -> None:
    """Child: train (to die at ``point``), then save the final weights to ``out``."""
    if point is not None and point.kind in WRITE_KINDS:
        arm_write_kill(point)
    model = killable_model(point)
    sweep_trainer(Path(root)).fit(model, sweep_data())
    torch.save(weights(model), out)


def prepare_sweep(workdir: Path) -> Reference:
    """The uninterrupted run the sweep's cases are compared with."""
    warm_up()
    root = workdir / "reference"
    out = workdir / "reference.pt"
    code = run_forked(_train, str(root), str(out), None)
    if code != 0:
        raise RuntimeError(f"the uninterrupted run failed (exit code {code})")
    return Reference.read(out, root / SWEEP_NAME)


def _kill_after_first_checkpoint(process: BaseProcess, folder: Path, delay: float) -> None:
    deadline = time.monotonic() + CHILD_TIMEOUT
    while (
        not hlt.find_checkpoints(folder)
        and process.exitcode is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.002)
    time.sleep(delay)
    if process.exitcode is None and process.pid is not None:
        os.kill(process.pid, signal.SIGKILL)


def sweep_case(reference: Reference, point: KillPoint, case_dir: Path) -> CaseResult:
    """Kill a training process at ``point``, inspect the checkpoints, resume, compare."""
    root = case_dir / "run"
    folder = root / SWEEP_NAME
    process = start_forked(_train, str(root), str(case_dir / "never.pt"), point)
    if point.kind == "external":
        _kill_after_first_checkpoint(process, folder, point.at / 1000)
    code = finish(process)
    if code is None:
        return CaseResult(str(point), ("the run to be killed hung",), hung=True)
    problems: list[str] = []
    note = ""
    if code != -signal.SIGKILL:
        if point.kind == "external" and code == 0:
            note = "the run ended before the kill landed"
        else:
            problems.append(f"the run to be killed exited with code {code}, not by SIGKILL")

    found, damaged = inspect_checkpoints(folder, reference.checkpoints)
    if found:
        newest = hlt.find_checkpoints(folder)[-1]
        try:
            hlt.load_checkpoint(newest)
        except hlt.CheckpointError as error:
            damaged.append(f"the newest checkpoint {newest.name} cannot be loaded: {error}")
    completed = point.completed_writes()
    if completed is not None:
        expected = reference.iterations[:completed]
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        if missing:
            damaged.append(f"checkpoints written before the kill are missing: {missing}")
        if extra:
            problems.append(f"checkpoints exist that the kill came before: {extra}")
    if point.kind in ("mid-write", "before-rename") and not leftovers(folder):
        problems.append("no temporary file: the kill missed the checkpoint write")

    out = case_dir / "resumed.pt"
    code = run_forked(_train, str(root), str(out), None)
    if code is None:
        return CaseResult(
            str(point), (*problems, *damaged, "the resumed run hung"), bool(damaged), True
        )
    if code != 0:
        problems.append(f"the resumed run failed (exit code {code})")
    resumed = torch.load(out, weights_only=True) if code == 0 else None
    more_problems, more_damaged = reference.after_resuming(folder, resumed)
    problems.extend(more_problems)
    damaged.extend(more_damaged)
    return CaseResult(str(point), (*problems, *damaged), lost=bool(damaged), note=note)


def sigkill_sweep(workdir: Path, seed: int = SEED, count: int = 12) -> Outcome:
    """Every case of `kill_points` against one uninterrupted run."""
    tally = Tally("SIGKILL sweep, 1 process")
    reference = prepare_sweep(workdir)
    for index, point in enumerate(kill_points(seed, count)):
        tally.add(sweep_case(reference, point, workdir / f"kill-{index:02d}"))
    return tally.outcome()

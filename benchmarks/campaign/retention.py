"""Scenario: the SIGKILL sweep with checkpoint retention deleting old checkpoints.

The sweep's training (`benchmarks.campaign.sweep`) with a `RetentionPlugin` that keeps the
newest two checkpoints and the best one by validation accuracy. The run is killed at a
seeded sweep of points, among them right before and right after a checkpoint is
deleted, then resumed. Checked after each kill: the newest checkpoint loads; every
checkpoint left equals the uninterrupted run's of the same iteration; nothing the policy
keeps is missing. Checked while resuming: the checkpoint the run resumes from is not
deleted before a newer one is on disk. Checked at the end: the same final weights and the
same checkpoints as an uninterrupted run with retention.
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path
from typing import Any

import attrs
import torch

import helios.plugins as hlp
import helios.trainer as hlt
from benchmarks.campaign.checkpoints import (
    Reference,
    inspect_checkpoints,
    leftovers,
    weights_damage,
)
from benchmarks.campaign.processes import (
    SEED,
    finish,
    replace_attribute,
    run_forked,
    sigkill_self,
    start_forked,
    warm_up,
)
from benchmarks.campaign.results import CaseResult, Outcome, Tally
from benchmarks.campaign.sweep import (
    SWEEP_EVERY,
    SWEEP_NAME,
    SWEEP_STEPS,
    WRITE_KINDS,
    KillPoint,
    arm_write_kill,
    killable_model,
    sweep_data,
    sweep_trainer,
)
from benchmarks.campaign.workload import weights

#: The policy under test, and the plug-in's id (its state is not compared: it differs
#: from the keep-everything reference's by the names it has dropped).
KEEP_NEWEST, KEEP_BEST, METRIC = 2, 1, "accuracy"
_IGNORED = frozenset({hlp.RetentionPlugin.plugin_id})
DELETE_KINDS = ("before-delete", "after-delete")
#: Exit status of a resumed run that deleted the checkpoint it resumed from too early.
RESUMED_FROM_DELETED = 86


def _policy(keep_all: bool) -> hlp.RetentionPlugin:
    if keep_all:  # scores every checkpoint, deletes none: the reference
        return hlp.RetentionPlugin(10**6, metric=METRIC)
    return hlp.RetentionPlugin(KEEP_NEWEST, keep_best=KEEP_BEST, metric=METRIC)


def _arm_delete_kill(point: KillPoint) -> None:
    """In the child: SIGKILL this process around its ``point.at``-th checkpoint deletion."""
    calls = 0
    real_unlink = os.unlink

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        if hlt.parse_checkpoint_name(Path(path).name) is None:
            real_unlink(path, *args, **kwargs)
            return
        calls += 1
        if calls == point.at and point.kind == "before-delete":
            sigkill_self()
        real_unlink(path, *args, **kwargs)
        if calls == point.at:
            sigkill_self()

    replace_attribute(os, "unlink", unlink)


def _guard_resumed_from(folder: Path) -> None:
    """In a resuming child: end with `RESUMED_FROM_DELETED` if the checkpoint it resumes
    from is deleted while no newer checkpoint is on disk."""
    found = hlt.find_checkpoints(folder)
    if not found:
        return
    resumed_from = found[-1]
    real_unlink = os.unlink

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if (
            Path(path).name == resumed_from.name
            and hlt.find_checkpoints(folder)[-1] == resumed_from
        ):
            os._exit(RESUMED_FROM_DELETED)
        real_unlink(path, *args, **kwargs)

    replace_attribute(os, "unlink", unlink)


def _train_kept(root: str, out: str, point: KillPoint | None, keep_all: bool) -> None:
    """Child: the sweep's training with retention (to die at ``point``); final weights to
    ``out``."""
    if point is None:
        _guard_resumed_from(Path(root) / SWEEP_NAME)
    elif point.kind in WRITE_KINDS:
        arm_write_kill(point)
    elif point.kind in DELETE_KINDS:
        _arm_delete_kill(point)
    trainer = sweep_trainer(Path(root))
    _policy(keep_all).configure_trainer(trainer)
    model = killable_model(point)
    trainer.fit(model, sweep_data())
    torch.save(weights(model), out)


@attrs.frozen
class RetentionReference:
    """Two uninterrupted runs: one keeping (and scoring) every checkpoint, one with the
    policy. The names of every checkpoint, in order, and their scores."""

    every: Reference
    kept: list[int]
    names: list[str]
    scores: dict[str, float | None]

    def must_keep(self, completed: int) -> set[int]:
        """The iterations the policy keeps once ``completed`` checkpoints are written."""
        names = self.names[:completed]
        keep = hlp.retained(
            names, self.scores, keep_newest=KEEP_NEWEST, keep_best=KEEP_BEST, mode="max"
        )
        return {self.every.iterations[index] for index, name in enumerate(names) if name in keep}


def _iterations(folder: Path) -> list[int]:
    return [
        hlt.load_checkpoint(p)["training_state"].global_iteration
        for p in hlt.find_checkpoints(folder)
    ]


def prepare_retention(workdir: Path) -> RetentionReference:
    """The uninterrupted runs the cases are compared with."""
    warm_up()
    runs = {}
    for keep_all in (True, False):
        root = workdir / ("every" if keep_all else "kept")
        code = run_forked(_train_kept, str(root), str(root / "weights.pt"), None, keep_all)
        if code != 0:
            raise RuntimeError(f"an uninterrupted run with retention failed (exit code {code})")
        runs[keep_all] = root
    every = Reference.read(runs[True] / "weights.pt", runs[True] / SWEEP_NAME)
    files = hlt.find_checkpoints(runs[True] / SWEEP_NAME)
    scores = hlt.load_checkpoint(files[-1])["plugins"][hlp.RetentionPlugin.plugin_id]["scores"]
    kept = _iterations(runs[False] / SWEEP_NAME)
    return RetentionReference(every, kept, [path.name for path in files], dict(scores))


def retention_points(seed: int = SEED, count: int = 9) -> list[KillPoint]:
    """A seeded sweep: around two deletions, each kind of write kill, a validation pass,
    and training steps for the rest."""
    writes = SWEEP_STEPS // SWEEP_EVERY
    deletions = writes - KEEP_NEWEST - KEEP_BEST  # at least this many in every run
    if not 7 <= count <= 7 + SWEEP_STEPS:
        raise ValueError(f"count must be in 7..{7 + SWEEP_STEPS}, got {count}")
    rng = random.Random(seed + 1)
    points = [KillPoint(kind, rng.randint(1, deletions)) for kind in DELETE_KINDS]
    points += [KillPoint(kind, rng.randint(KEEP_NEWEST + 1, writes)) for kind in WRITE_KINDS]
    points.append(KillPoint("validation", rng.randint(1, SWEEP_STEPS // 4)))
    steps = rng.sample(range(SWEEP_EVERY * 3, SWEEP_STEPS + 1), count - len(points))
    points.extend(KillPoint("train-step", step) for step in sorted(steps))
    return points


def _after_kill(
    reference: RetentionReference, point: KillPoint, folder: Path
) -> tuple[list[str], list[str]]:
    """What is wrong with the checkpoints a kill left, as ``(problems, damaged)``."""
    found, damaged = inspect_checkpoints(folder, reference.every.checkpoints, _IGNORED)
    problems: list[str] = []
    completed = point.completed_writes()
    if completed is None and found:  # a deletion kill: after the newest write
        completed = reference.every.iterations.index(max(found)) + 1
    if completed:
        if not found:
            damaged.append("no checkpoint is left, though some were written")
        missing = sorted(reference.must_keep(completed) - set(found))
        if missing:
            damaged.append(f"checkpoints the policy keeps are gone: {missing}")
        extra = sorted(set(found) - set(reference.every.iterations[:completed]))
        if extra:
            problems.append(f"checkpoints exist that the kill came before: {extra}")
    return problems, damaged


def retention_case(reference: RetentionReference, point: KillPoint, case_dir: Path) -> CaseResult:
    """Kill a run with retention at ``point``, inspect what is left, resume, compare."""
    root = case_dir / "run"
    folder = root / SWEEP_NAME
    code = finish(start_forked(_train_kept, str(root), str(case_dir / "never.pt"), point, False))
    if code is None:
        return CaseResult(str(point), ("the run to be killed hung",), hung=True)
    problems, damaged = _after_kill(reference, point, folder)
    if code != -signal.SIGKILL:
        problems.append(f"the run to be killed exited with code {code}, not by SIGKILL")
    out = case_dir / "resumed.pt"
    code = run_forked(_train_kept, str(root), str(out), None, False)
    if code is None:
        return CaseResult(
            str(point), (*problems, *damaged, "the resumed run hung"), bool(damaged), True
        )
    if code == RESUMED_FROM_DELETED:
        damaged.append("the resumed run deleted the checkpoint it resumed from too early")
    elif code != 0:
        problems.append(f"the resumed run failed (exit code {code})")
    else:
        damaged.extend(weights_damage(torch.load(out, weights_only=True), reference.every.weights))
        found, later = inspect_checkpoints(folder, reference.every.checkpoints, _IGNORED)
        damaged.extend(later)
        if found != reference.kept:
            problems.append(f"after resuming the checkpoints are {found}, not {reference.kept}")
        if leftovers(folder):
            problems.append(f"temporary files remain after resuming: {leftovers(folder)}")
    return CaseResult(str(point), (*problems, *damaged), lost=bool(damaged))


def retention_sweep(workdir: Path, seed: int = SEED, count: int = 9) -> Outcome:
    """Every case of `retention_points` against the uninterrupted runs."""
    tally = Tally("SIGKILL sweep with retention")
    reference = prepare_retention(workdir)
    for index, point in enumerate(retention_points(seed, count)):
        tally.add(retention_case(reference, point, workdir / f"kill-{index:02d}"))
    return tally.outcome()

"""What the study prints: a line per trial, the header, and the closing summary."""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

import helios.trainer as hlt
from helios.examples.tune.data import DigitsData
from helios.examples.tune.model import METRIC, SAVE_NAME, DigitsClassifier, Hyper
from helios.examples.tune.options import Options
from helios.examples.tune.storage import locate, mask_password
from helios.examples.tune.study import (
    ATTR_FULL,
    ATTR_SAVE_NAME,
    ATTR_START,
    make_trainer,
    original_number,
)

__all__ = [
    "PLOTS",
    "Tested",
    "epochs_run",
    "evaluate_best",
    "format_params",
    "header",
    "print_trial",
    "seconds_per_epoch",
    "summary",
    "trial_line",
    "write_plots",
]


def epochs_run(trial: FrozenTrial) -> int:
    """Epochs this attempt trained (validation runs, and is reported, after every one)."""
    start = int(trial.user_attrs.get(ATTR_START, 0))
    reached = max(trial.intermediate_values, default=start)
    return max(reached - start, 0)


def format_params(params: Mapping[str, Any]) -> str:
    """``name=value`` pairs, floats to 3 significant digits."""
    return " ".join(
        f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in params.items()
    )


def trial_line(trial: FrozenTrial) -> str:
    """One line about a finished trial."""
    value = trial.value
    if value is None and trial.intermediate_values:
        value = trial.intermediate_values[max(trial.intermediate_values)]
    shown = "   -  " if value is None else f"{value:.4f}"
    full = int(trial.user_attrs.get(ATTR_FULL, 0))
    start = int(trial.user_attrs.get(ATTR_START, 0))
    epochs = f"epochs {start + epochs_run(trial):>3}/{full}"
    if start:
        epochs += f" (resumed at {start})"
    retried = original_number(trial)
    origin = f" [retries trial {retried}]" if retried != trial.number else ""
    return (
        f"trial {trial.number:>3} {trial.state.name:<8} accuracy {shown}  {epochs}  "
        f"{format_params(trial.params)}{origin}"
    )


def print_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """`Study.optimize` callback: one line per finished trial."""
    print(trial_line(trial), flush=True)


@dataclasses.dataclass(frozen=True)
class Tested:
    """The best trial, tested."""

    trial: FrozenTrial
    accuracy: float
    checkpoint: Path


def evaluate_best(options: Options, study: optuna.Study) -> Tested | None:
    """Test the best trial's newest checkpoint on the test set (no retraining).

    Returns ``None`` when no trial has completed or its checkpoint is gone.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    best = study.best_trial
    model = DigitsClassifier(Hyper.from_params(best.params))
    model.save_name = str(best.user_attrs.get(ATTR_SAVE_NAME, f"{SAVE_NAME}_trial-{best.number}"))
    trainer = make_trainer(options, cpu_processes=1)
    folder = trainer.checkpoint_folder(model)
    found = hlt.find_checkpoints(folder) if folder is not None else []
    if not found:
        return None
    trainer.test(model, DigitsData(options.batch_size))
    return Tested(best, model.metrics["test_" + METRIC], found[-1])


def summary(
    options: Options, study: optuna.Study, tested: Tested | None, wall: float, new: int
) -> str:
    """The closing report: best trial, test accuracy, counts, what pruning saved."""
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in TrialState}
    lines = [
        "",
        f"== study {study.study_name!r}: {len(trials)} trials "
        f"({new} finished in this run, {wall:.1f} s wall time) ==",
        "trials: "
        + ", ".join(
            f"{counts[state]} {state.name.lower()}"
            for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        )
        + "".join(
            f", {counts[state]} {state.name.lower()}"
            for state in (TrialState.RUNNING, TrialState.WAITING)
            if counts[state]
        ),
    ]
    if counts[TrialState.COMPLETE]:
        best = study.best_trial
        lines.append(
            f"best trial: {best.number} (checkpoints {best.user_attrs.get(ATTR_SAVE_NAME)})"
        )
        lines.append(f"best params: {format_params(best.params)}")
        lines.append(f"best validation accuracy: {best.value:.4f}")
    else:
        lines.append("best trial: none completed yet")
    if tested is not None:
        lines.append(
            f"test accuracy of trial {tested.trial.number}: {tested.accuracy:.4f} "
            f"({tested.checkpoint.name}, not retrained)"
        )
    elif counts[TrialState.COMPLETE]:
        lines.append("test accuracy: the best trial's checkpoint is missing")
    lines.extend(_savings(trials))
    return "\n".join(lines)


def _savings(trials: Sequence[FrozenTrial]) -> list[str]:
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    attempts = [t for t in trials if t.state.is_finished() and ATTR_FULL in t.user_attrs]
    run = sum(epochs_run(t) for t in attempts)
    full = sum(int(t.user_attrs.get(ATTR_FULL, 0)) for t in finished)
    if not full:
        return []
    seconds = sum(_seconds_of(t) for t in attempts)
    saved = max(full - run, 0)
    per_epoch = seconds_per_epoch(attempts)
    return [
        f"training: {run} epochs run in {seconds:.1f} s; without pruning the "
        f"{len(finished)} finished trials need {full} epochs",
        f"pruning saved {saved} epochs ({saved / full:.0%}), about {saved * per_epoch:.1f} s "
        f"(estimated at {per_epoch:.3f} s per epoch)",
    ]


def _seconds_of(trial: FrozenTrial) -> float:
    if trial.datetime_complete is None or trial.datetime_start is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def seconds_per_epoch(trials: Sequence[FrozenTrial]) -> float:
    """What one more epoch costs: the slope of a trial's duration over its epochs.

    A trial also has fixed costs (building the model and trainer, storage writes); a
    least-squares line through (epochs, seconds) separates them from the cost per epoch,
    which plain division would overstate for short, pruned trials.
    """
    points = [(epochs_run(t), _seconds_of(t)) for t in trials if epochs_run(t)]
    if not points:
        return 0.0
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    ratio = sum(ys) / sum(xs)  # fixed costs included: an upper bound
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread > 0:
        slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
        if 0 < slope < ratio:  # a noisy fit can say anything; fixed costs are not negative
            return slope
    return ratio


#: The plots ``--plot`` writes, by file name.
PLOTS = ("optimization-history.png", "intermediate-values.png", "param-importances.png")


def write_plots(study: optuna.Study, folder: Path, seed: int = 0) -> list[Path]:
    """Save the optimisation history, the intermediate values (the validation accuracy of
    every trial after each epoch: where pruned trials stop) and the parameter importances
    (with ``seed`` for its random forest) as PNG files in ``folder``."""
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")  # files only, no window
    pyplot = importlib.import_module("matplotlib.pyplot")
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    with warnings.catch_warnings():
        # Optuna marks its matplotlib back end experimental.
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        plots: dict[str, Any] = {
            PLOTS[0]: optuna_plots.plot_optimization_history,
            PLOTS[1]: optuna_plots.plot_intermediate_values,
        }
        if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) > 1:
            evaluator = FanovaImportanceEvaluator(seed=seed)
            plots[PLOTS[2]] = lambda s: optuna_plots.plot_param_importances(s, evaluator=evaluator)
        for name, plot in plots.items():
            axes: Any = plot(study)
            path = folder / name
            axes.figure.savefig(path, bbox_inches="tight")
            pyplot.close(axes.figure)
            written.append(path)
    return written


def header(options: Options, study: optuna.Study, queued: list[int]) -> str:
    """The opening lines: which study, where, what runs, what waits to be retried."""
    trials = study.get_trials(deepcopy=False)
    known = f"continuing, {len(trials)} trials so far" if trials else "new study"
    lines = [
        f"study {study.study_name!r} in {mask_password(options.storage_url)} ({known})",
        f"running {options.n_trials} trials: {options.workers} worker(s), "
        f"{options.procs} training process(es) per trial, {options.epochs} epochs per trial, "
        f"pruner {options.pruner}, seed {options.seed}",
        f"checkpoints in {options.checkpoints}",
    ]
    waiting = [t.number for t in trials if t.state == TrialState.WAITING]
    running = [t.number for t in trials if t.state == TrialState.RUNNING]
    if queued:
        lines.append(f"queued again after Ctrl-C: trials {queued}")
    if waiting:
        lines.append(f"waiting to be retried or run first: trials {waiting}")
    if running and not locate(options.storage_url, options.storage_class).journal:
        lines.append(
            f"still marked running: trials {running}; if their process is gone they are "
            f"retried once their heartbeat is {options.grace_period} s old"
        )
    return "\n".join(lines)

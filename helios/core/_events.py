"""The events the training loop's shell reports, the actions it performs, and the loop's
own state: immutable records for `helios.core.loop.step`."""

from __future__ import annotations

from typing import NamedTuple

from helios.core._state import TrainingState

# Events and actions are named tuples: a training step makes a few of them, and tuples
# are the cheapest immutable records Python has (the step-overhead benchmark counts).

# -- events: what the shell reports ------------------------------------------------------


class Start(NamedTuple):
    """Training starts (or resumes) from the loop's state.

    Attributes:
        distributed: Several processes train together (stop answers must agree).
        stops_per_batch: Some party (a plug-in that claimed ``should_training_stop``, or
            the model) may ask to stop after any batch, not only after validation.
    """

    distributed: bool = False
    stops_per_batch: bool = True


class BatchRan(NamedTuple):
    """The batch `RunBatch` drew was trained on and the stop question answered.

    Attributes:
        seconds: The batch's own time: its plug-in processing, hooks and step.
        stop: The answer to the stop question `RunBatch` asked for.
    """

    seconds: float
    stop: bool


class StopAnswered(NamedTuple):
    """What the plug-ins and the model answered to `AskStop` (combined if asked)."""

    stop: bool


class ValidationRan(NamedTuple):
    """A validation pass ended; ``improved`` is the model's `have_metrics_improved()`."""

    improved: bool


class EpochExhausted(NamedTuple):
    """The epoch's data ran out after ``batches`` batches were drawn in this process."""

    batches: int


Event = Start | BatchRan | StopAnswered | ValidationRan | EpochExhausted


# -- actions: what the shell does ----------------------------------------------------------


class StartEpoch(NamedTuple):
    """Start epoch ``epoch`` (the model's epoch-start hook), skipping its first ``skip``
    batches (a resumed epoch). Reports nothing."""

    epoch: int
    skip: int


class RunBatch(NamedTuple):
    """Draw the epoch's next batch, train on it, then ask whether to stop; report
    `BatchRan`. When the epoch has no batch left, run the model's epoch-end hook and
    report `EpochExhausted` instead.

    Attributes:
        state: The state the hooks see (it counts the batch).
        should_log: This batch closes a ``print_frequency``-th optimiser step (the
            model's ``on_training_batch_end`` is told).
        combine: Combine the stop answer across processes (true on every rank if true on
            any): only when some party may ask to stop after a batch.
    """

    state: TrainingState
    should_log: bool
    combine: bool


class Log(NamedTuple):
    """Log the progress of ``state``. Reports nothing."""

    state: TrainingState


class AskStop(NamedTuple):
    """Ask the plug-in that decides stops and the model; report `StopAnswered`.

    Attributes:
        combine: Combine the answer across processes.
        early: Early stopping wants to stop as well (part of the answer).
    """

    combine: bool
    early: bool


class Validate(NamedTuple):
    """Run validation cycle ``cycle`` (1 for the first); report `ValidationRan`."""

    cycle: int


class Checkpoint(NamedTuple):
    """Write a checkpoint of ``state``. Reports nothing."""

    state: TrainingState


class EndTraining(NamedTuple):
    """Training is over; with ``mid_epoch`` the epoch in progress ends early, and its
    end hook has not run yet."""

    mid_epoch: bool


Action = StartEpoch | RunBatch | Log | AskStop | Validate | Checkpoint | EndTraining


class Later(NamedTuple):
    """A step decided now and made concrete when reached: what it becomes depends on the
    answers that arrive in between."""

    what: str


LATER_CHECKPOINT = Later("a checkpoint of the state of that moment")
NEXT_BATCH = Later("the next batch, unless training stops")
NEXT_EPOCH = Later("the next epoch, unless training stops")


class Loop(NamedTuple):
    """The loop's own state: the training state and what is decided but not yet done.

    Attributes:
        state: Where training stands (the last batch that ran is counted).
        stop: A stop was requested (by a party or by early stopping).
        facts: The run's facts given at `Start`.
        then: What follows once the answer the loop waits for has come.
        running: The state of the batch `RunBatch` asked for, while it runs (it counts
            only once the batch is known to exist).
    """

    state: TrainingState
    stop: bool = False
    facts: Start = Start()
    then: tuple[Action | Later, ...] = ()
    running: TrainingState | None = None

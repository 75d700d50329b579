"""The training loop's decisions: one pure transition over events, for those who drive or
study the loop (the trainer uses it; tests simulate it).

`step(loop, config, event)` takes the loop's state, the schedule and what just happened,
and returns the next state and the actions to perform. See the architecture page of the
documentation for one training step drawn as events and actions.

Examples:
    >>> from helios.core import TrainingState, TrainingUnit
    >>> from helios.core.loop import BatchRan, Loop, LoopConfig, Start, step
    >>> config = LoopConfig(unit=TrainingUnit.ITERATION, total_steps=1)
    >>> loop, actions = step(Loop(TrainingState()), config, Start())
    >>> [type(action).__name__ for action in actions]
    ['StartEpoch', 'RunBatch']
    >>> actions[1].state.global_iteration  # the state the first batch's hooks see
    1
    >>> loop, actions = step(loop, config, BatchRan(seconds=0.01, stop=False))
    >>> actions
    (EndTraining(mid_epoch=True),)
"""

from helios.core._events import Action as Action
from helios.core._events import AskStop as AskStop
from helios.core._events import BatchRan as BatchRan
from helios.core._events import Checkpoint as Checkpoint
from helios.core._events import EndTraining as EndTraining
from helios.core._events import EpochExhausted as EpochExhausted
from helios.core._events import Event as Event
from helios.core._events import Log as Log
from helios.core._events import Loop as Loop
from helios.core._events import RunBatch as RunBatch
from helios.core._events import Start as Start
from helios.core._events import StartEpoch as StartEpoch
from helios.core._events import StopAnswered as StopAnswered
from helios.core._events import Validate as Validate
from helios.core._events import ValidationRan as ValidationRan
from helios.core._loop import LoopConfig as LoopConfig
from helios.core._loop import checkpoint_name as checkpoint_name
from helios.core._loop import is_done as is_done
from helios.core._loop import parse_checkpoint_name as parse_checkpoint_name
from helios.core._loop import step as step
from helios.core._state import state_from_dict as state_from_dict
from helios.core._state import state_to_dict as state_to_dict

__all__ = [
    "Action",
    "AskStop",
    "BatchRan",
    "Checkpoint",
    "EndTraining",
    "EpochExhausted",
    "Event",
    "Log",
    "Loop",
    "LoopConfig",
    "RunBatch",
    "Start",
    "StartEpoch",
    "StopAnswered",
    "Validate",
    "ValidationRan",
    "checkpoint_name",
    "is_done",
    "parse_checkpoint_name",
    "state_from_dict",
    "state_to_dict",
    "step",
]

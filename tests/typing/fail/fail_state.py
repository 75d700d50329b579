"""The training state is immutable. Each erroring line ends in `# E: <code>`."""

from __future__ import annotations

import attrs

import helios.trainer as hlt

state = hlt.TrainingState()
state.global_iteration = 1  # E: misc
state.average_iter_time += 0.5  # E: misc
attrs.evolve(state, global_epoch="one")  # E: arg-type
attrs.evolve(state, epochs=1)  # E: call-arg
hlt.TrainingState(current_iteration=1.5)  # E: arg-type
unit: hlt.TrainingUnit = "epoch"  # E: assignment

trainer = hlt.Trainer(use_cpu=True)
trainer.state.global_epoch = 2  # E: misc

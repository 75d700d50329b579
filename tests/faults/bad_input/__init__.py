"""The bad-input matrix: every public entry point, fed what it must refuse.

Each `Row` names the entry point, the bad input, the exception type expected and a regex
its message must match (the problem, and where it helps, what to do). Every row runs in
a `Workspace` that already holds what a user would not want to lose: two checkpoints of
a real run (iterations 3 and 6, with a plug-in state) and an Optuna study in SQLite. After
the row, every file that was there is byte-identical, every checkpoint under a final
name loads, and no temporary file is left. Exceptions raised by a plug-in's or a model's
hook must leave ``fit`` / ``test`` as the very same object.

One test module a family of entry points (``test_trainer_args``, ``test_hooks``,
``test_data``, ``test_checkpoints``, ``test_trees``, ``test_plugins``, ``test_optuna``),
each with its table of rows; ``test_matrix`` holds them all in ``ROWS``. The workspace
and the rows' parts are in `tests.faults.bad_input.parts`; how a row is run and checked,
in `tests.faults.bad_input.runner`, whose `run_matrix` runs the whole table for
``benchmarks/faults.py``.
"""

"""Runnable examples that ship with helios.

- `helios.examples.tune`: an Optuna study over a small classifier of scikit-learn's
  digits, with pruning, resumable trials, several workers and distributed trials
  (``python -m helios.examples.tune --help``).
"""

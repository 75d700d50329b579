"""Tune a small classifier of handwritten digits with Optuna and helios.

Run ``python -m helios.examples.tune`` (``--help`` lists the options). The study:

- data: scikit-learn's ``load_digits`` (1797 8x8 images, shipped with scikit-learn), split
  once with a fixed seed into training, validation and test sets;
- model: an MLP whose width, learning rate, dropout and optimiser come from the trial,
  read in `DigitsClassifier.setup` through the `OptunaPlugin` in the trainer's table;
- search: Optuna's TPE sampler with a `MedianPruner` that stops unpromising trials after
  any epoch (the plug-in reports the validation accuracy after every validation cycle);
- storage: SQLite in ``--workdir`` by default, or any storage Optuna's command line takes
  (``--storage`` / ``OPTUNA_STORAGE``, ``--storage-class``); several worker processes
  (``--workers``) and several machines can share one storage (PostgreSQL, with the
  checkpoints in a folder they share: ``--checkpoint-dir``);
- resuming: run the command again and the study continues. A trial whose process died
  (a kill, a crash, a lost machine) is noticed through the storage's heartbeat and queued
  again; a trial stopped with Ctrl-C is queued again at the next start. The retried trial
  has a new number but keeps the original's save name (``digits_trial-<original>``), so
  it continues from the last checkpoint of the trial it retries;
- at the end, a summary: the best parameters, the best validation accuracy, the test
  accuracy of the best trial's checkpoint (nothing is retrained), the trial counts and
  what pruning saved.

The package's modules: `options` (the command line), `data`, `model`, `storage`, `study`
(the objective), `report` (what is printed) and `run` (`main` and its worker processes).
"""

from helios.examples.tune import study as study
from helios.examples.tune.data import DigitsData as DigitsData
from helios.examples.tune.data import MissingDependencyError as MissingDependencyError
from helios.examples.tune.data import Splits as Splits
from helios.examples.tune.data import load_splits as load_splits
from helios.examples.tune.model import METRIC as METRIC
from helios.examples.tune.model import SAVE_NAME as SAVE_NAME
from helios.examples.tune.model import DigitsClassifier as DigitsClassifier
from helios.examples.tune.model import Hyper as Hyper
from helios.examples.tune.model import suggest_hyper as suggest_hyper
from helios.examples.tune.options import Options as Options
from helios.examples.tune.options import parse_args as parse_args
from helios.examples.tune.report import epochs_run as epochs_run
from helios.examples.tune.report import seconds_per_epoch as seconds_per_epoch
from helios.examples.tune.report import summary as summary
from helios.examples.tune.report import trial_line as trial_line
from helios.examples.tune.run import main as main
from helios.examples.tune.run import shares as shares
from helios.examples.tune.storage import StorageError as StorageError
from helios.examples.tune.storage import close_storage as close_storage
from helios.examples.tune.storage import make_storage as make_storage
from helios.examples.tune.storage import mask_password as mask_password

__all__ = [
    "study",
    "METRIC",
    "SAVE_NAME",
    "DigitsClassifier",
    "DigitsData",
    "Hyper",
    "MissingDependencyError",
    "Options",
    "Splits",
    "StorageError",
    "close_storage",
    "epochs_run",
    "load_splits",
    "main",
    "make_storage",
    "mask_password",
    "parse_args",
    "seconds_per_epoch",
    "shares",
    "suggest_hyper",
    "summary",
    "trial_line",
]

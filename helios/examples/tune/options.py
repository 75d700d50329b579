"""The command line: `Options`, whose fields carry their own flags, and `parse_args`.

Every field of `Options` is one ``--flag`` (``n_trials`` is ``--n-trials``): its metadata
(`Flag`) holds the help text and how the text is parsed, so the parser is generated from
the class and nothing is written twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import attrs

__all__ = ["STORAGE_CLASSES", "Flag", "Options", "build_parser", "parse_args"]

T = TypeVar("T")

#: ``--storage-class`` values, named as Optuna's command line names them.
STORAGE_CLASSES = ("RDBStorage", "JournalFileBackend")

_FLAG = "flag"


@attrs.frozen(kw_only=True)
class Flag:
    """How one `Options` field appears on the command line.

    Attributes:
        help: The ``--help`` text, without the default (added from the field).
        parse: Turns the flag's text into the field's value (``None``: a switch).
        choices: The accepted values, if only a few are.
        default_text: Shown as the default when the field's own default says little.
        metavar: The value's name in ``--help``; by default the one its parser implies
            (``N``, ``SECONDS``, ``DIR``), else the field's name in capitals.
    """

    help: str
    parse: Callable[[str], object] | None = str
    choices: tuple[str, ...] | None = None
    default_text: str | None = None
    metavar: str | None = None


def option(
    default: T,
    help: str,
    *,
    parse: Callable[[str], object] | None = str,
    choices: tuple[str, ...] | None = None,
    default_text: str | None = None,
    metavar: str | None = None,
) -> T:
    """A dataclass field with its `Flag` in the metadata."""
    if metavar is None and parse is not None:
        metavar = _METAVARS.get(parse)
    flag = Flag(
        help=help, parse=parse, choices=choices, default_text=default_text, metavar=metavar
    )
    return dataclasses.field(default=default, metadata={_FLAG: flag})


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def whole_seconds(text: str) -> int:
    """A whole number of seconds, at least 1."""
    return positive_int(text)


def seconds(text: str) -> float:
    """A number of seconds, at least 0."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text}")
    return value


#: The value names the parsers imply in ``--help``.
_METAVARS: dict[Callable[[str], object], str] = {
    positive_int: "N",
    non_negative_int: "N",
    seconds: "SECONDS",
    whole_seconds: "SECONDS",
    Path: "DIR",
}


@dataclasses.dataclass(frozen=True)
class Options:
    """What to run (the command line, parsed)."""

    # option() returns a dataclasses.field (a field specifier), not a shared default.
    workdir: Path = option(  # noqa: RUF009
        Path("helios-tune"),
        "this worker's folder: the SQLite study (the default storage), plots, and the "
        "checkpoints unless --checkpoint-dir puts them elsewhere",
        parse=Path,
    )
    checkpoint_dir: Path | None = option(  # noqa: RUF009
        None,
        "folder of every trial's checkpoints; workers on several machines must share one "
        "(a network file system), so that any of them can resume a trial",
        parse=Path,
        default_text="<workdir>/checkpoints",
        metavar="DIR",
    )
    storage: str = option(
        "",
        "the study's storage, as Optuna's command line takes it: a database URL "
        "(sqlite:///PATH, postgresql+psycopg://USER@HOST:PORT/DB) or the path of a "
        "journal file; the password is best kept in ~/.pgpass or OPTUNA_STORAGE",
        default_text="$OPTUNA_STORAGE, else sqlite:///<workdir>/helios-tune.db",
        metavar="URL",
    )
    storage_class: str = option(
        "",
        "how to open --storage: RDBStorage (a database) or JournalFileBackend (a journal "
        "file, created if missing)",
        choices=STORAGE_CLASSES,
        default_text="an existing file is a journal, anything else a database URL",
    )
    study_name: str = option("helios-digits", "study to create or continue", metavar="NAME")
    n_trials: int = option(30, "trials this command runs, over its --workers", parse=positive_int)
    timeout: float | None = option(
        None,
        "stop starting trials after this many seconds",
        parse=seconds,
        default_text="none",
    )
    workers: int = option(1, "worker processes sharing the storage", parse=positive_int)
    procs: int = option(
        1,
        "training processes per trial; above 1, each trial trains distributed over gloo "
        "CPU processes",
        parse=positive_int,
    )
    seed: int = option(
        0,
        "seed of the sampler and of training; the data split is fixed",
        parse=non_negative_int,
    )
    epochs: int = option(20, "epochs of a trial that is not pruned", parse=positive_int)
    batch_size: int = option(64, "training batch size", parse=positive_int)
    pruner: str = option(
        "median", "'none' trains every trial to the end, to compare", choices=("median", "none")
    )
    plot: bool = option(
        False,
        "write optimisation-history, intermediate-value and parameter-importance plots to "
        "the workdir (needs matplotlib: pip install -e '.[plot]')",
        parse=None,
    )
    heartbeat: int = option(
        5, "seconds between a running trial's heartbeats (RDB storages)", parse=whole_seconds
    )
    grace: int = option(
        0,
        "seconds without a heartbeat before a trial counts as dead and is retried",
        parse=whole_seconds,
        default_text="3 x heartbeat",
    )
    max_retry: int = option(3, "times one trial may be retried", parse=non_negative_int)
    step_delay: float = option(
        0.0,
        "sleep this long after every training batch, to slow training down for a "
        "demonstration of interrupting and resuming",
        parse=seconds,
    )
    threads: int = option(
        1,
        "torch threads per training process; the MLP is too small to gain from more, and "
        "one leaves the other cores to other workers",
        parse=positive_int,
    )

    @property
    def storage_url(self) -> str:
        """``--storage``, or SQLite in the working folder."""
        return self.storage or f"sqlite:///{self.workdir / 'helios-tune.db'}"

    @property
    def grace_period(self) -> int:
        """Seconds without a heartbeat after which a running trial counts as dead."""
        return self.grace or 3 * self.heartbeat

    @property
    def checkpoints(self) -> Path:
        """Where every trial keeps its checkpoints (``<save name>/`` below)."""
        return self.checkpoint_dir or self.workdir / "checkpoints"


def _add_flag(parser: argparse.ArgumentParser, field: dataclasses.Field[object]) -> None:
    flag = field.metadata[_FLAG]
    assert isinstance(flag, Flag)
    shown = flag.default_text or "%(default)s"
    name = "--" + field.name.replace("_", "-")
    if flag.parse is None:
        parser.add_argument(name, action="store_true", help=flag.help)
        return
    parser.add_argument(
        name,
        type=flag.parse,
        choices=flag.choices,
        default=field.default,
        metavar=None if flag.choices else flag.metavar or field.name.upper(),
        help=f"{flag.help} (default: {shown})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one flag per `Options` field."""
    parser = argparse.ArgumentParser(
        prog="python -m helios.examples.tune",
        description=(
            "Tune an MLP on scikit-learn's digits with Optuna and helios: pruning, a "
            "persistent study that resumes, and resumable trials."
        ),
    )
    for field in dataclasses.fields(Options):
        _add_flag(parser, field)
    return parser


def _refusal(options: Options) -> str | None:
    """What is wrong with a combination of options, if anything."""
    if options.grace and options.grace <= options.heartbeat:
        return f"--grace ({options.grace}) must be longer than --heartbeat ({options.heartbeat})"
    if options.storage_class == "JournalFileBackend" and not options.storage:
        return "--storage-class JournalFileBackend needs --storage PATH (the journal file)"
    return None


def parse_args(
    argv: Sequence[str] | None = None, environ: dict[str, str] | None = None
) -> Options:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is ``None``).

    Without ``--storage``, the storage comes from ``OPTUNA_STORAGE`` in ``environ`` (the
    process's environment when ``None``), as Optuna's own command line does.
    """
    parser = build_parser()
    values = vars(parser.parse_args(argv))
    if not values["storage"]:
        values["storage"] = (os.environ if environ is None else environ).get("OPTUNA_STORAGE", "")
    options = Options(**values)
    refusal = _refusal(options)
    if refusal is not None:
        parser.error(refusal)
    return options

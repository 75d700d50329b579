"""The fault and bad-input campaign, as a table.

Run it from the repository root::

    python benchmarks/faults.py              # the campaign (about two minutes on 2 cores)
    python benchmarks/faults.py --quick      # fewer kill points, ranks and examples

It runs the crash scenarios of `benchmarks.campaign`, and the bad-input matrix and the
tree-map fuzz of ``tests/faults`` (the same functions the tests call), and prints one row
per scenario: cases tried, cases that survived (every check passed), cases that
lost data (a checkpoint or study record damaged, a completed checkpoint missing, a
resumed run ending with other weights, an input tree changed), cases that hung, and the
seconds the scenario took. "data lost" and "hangs" must be 0; the exit status is 1
otherwise, or when a case did not survive.

Scenarios:

- SIGKILL sweep, 1 process: a seeded sweep of kill points (training steps, a validation
  pass, halfway through a checkpoint write, after the write but before the rename,
  after the rename, and from outside at a random time); each run is then resumed and
  compared with an uninterrupted one.
- SIGKILL sweep with retention: the same training with a `RetentionPlugin` (newest two,
  best one) deleting old checkpoints, killed also right before and after a deletion;
  nothing the policy keeps may go, nor the checkpoint a run resumes from.
- SIGKILL 1 of 2 gloo ranks: each rank in turn killed from outside at a random time.
- disk full during a checkpoint write: ENOSPC injected five ways, one of them a real
  tmpfs that fills up (skipped where no tmpfs can be mounted).
- bad-input matrix: every public entry point given what it must refuse.
- tree-map fuzz: hypothesis-generated trees with odd leaves; "tried" counts examples.

The workers that are killed on purpose, and the runs that fail on purpose, log errors;
that output goes to a log file (``--log``), not to the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.campaign.disk import disk_full  # noqa: E402
from benchmarks.campaign.processes import SEED  # noqa: E402
from benchmarks.campaign.ranks import distributed_kill  # noqa: E402
from benchmarks.campaign.results import Outcome  # noqa: E402
from benchmarks.campaign.retention import retention_sweep  # noqa: E402
from benchmarks.campaign.sweep import sigkill_sweep  # noqa: E402
from tests.faults.bad_input.runner import run_matrix  # noqa: E402
from tests.faults.bad_input.test_matrix import ROWS  # noqa: E402
from tests.faults.test_tree_fuzz import fuzz  # noqa: E402

COLUMNS = ("scenario", "tried", "survived", "data lost", "hangs", "seconds")
WIDTHS = (38, 6, 9, 10, 6, 8)


def _row(values: tuple[object, ...]) -> str:
    cells = [
        f"{value:<{width}}" if index == 0 else f"{value:>{width}}"
        for index, (value, width) in enumerate(zip(values, WIDTHS, strict=True))
    ]
    return "  ".join(cells).rstrip()


def header() -> str:
    return _row(COLUMNS) + "\n" + "  ".join("-" * width for width in WIDTHS)


def row(outcome: Outcome) -> str:
    return _row(
        (
            outcome.scenario,
            outcome.tried,
            outcome.survived,
            outcome.data_lost,
            outcome.hangs,
            f"{outcome.seconds:.1f}",
        )
    )


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Send this process's file descriptor 2 (and its children's) to ``path``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="a smaller campaign")
    parser.add_argument("--seed", type=int, default=SEED, help="kill points, ranks")
    parser.add_argument("--kills", type=int, default=None, help="kill points (6..30)")
    parser.add_argument("--examples", type=int, default=None, help="fuzz examples a property")
    parser.add_argument("--log", type=Path, default=None, help="where worker output goes")
    args = parser.parse_args(argv)
    kills = args.kills or (10 if args.quick else 20)
    examples = args.examples or (50 if args.quick else 100)
    rounds = 1 if args.quick else 2

    logging.getLogger("helios").addHandler(logging.NullHandler())
    workdir = Path(tempfile.mkdtemp(prefix="helios-faults-"))
    log = args.log or workdir / "faults.log"
    scenarios: list[tuple[str, Callable[[], Outcome]]] = [
        ("sweep", lambda: sigkill_sweep(workdir / "sweep", args.seed, kills)),
        (
            "retention",
            lambda: retention_sweep(workdir / "retention", args.seed, 7 if args.quick else 12),
        ),
        ("ranks", lambda: distributed_kill(workdir / "ranks", args.seed, rounds)),
        ("disk", lambda: disk_full(workdir / "disk")),
        ("matrix", lambda: run_matrix(workdir / "matrix", ROWS)),
        ("fuzz", lambda: fuzz(examples)),
    ]

    started = time.perf_counter()
    print(f"fault campaign, seed {args.seed} (work folder {workdir})\n", flush=True)
    print(header(), flush=True)
    outcomes = []
    for _, run in scenarios:
        with stderr_to(log):
            outcome = run()
        outcomes.append(outcome)
        print(row(outcome), flush=True)
    total = Outcome(
        "total",
        sum(o.tried for o in outcomes),
        sum(o.survived for o in outcomes),
        sum(o.data_lost for o in outcomes),
        sum(o.hangs for o in outcomes),
        time.perf_counter() - started,
    )
    print("  ".join("-" * width for width in WIDTHS))
    print(row(total))

    notes = [f"{o.scenario}: {note}" for o in outcomes for note in o.notes]
    if notes:
        print("\nnotes:")
        print("\n".join(f"  {note}" for note in notes))
    problems = [f"{o.scenario}: {problem}" for o in outcomes for problem in o.problems]
    if problems:
        print("\nproblems:")
        print("\n".join(f"  {problem}" for problem in problems))
    failed = total.data_lost or total.hangs or total.survived != total.tried
    if not failed:
        for name, _ in scenarios:
            shutil.rmtree(workdir / name, ignore_errors=True)
    print(f"\nworker and failure logs: {log}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

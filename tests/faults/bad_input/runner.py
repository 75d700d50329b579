"""Running a row of the bad-input matrix: in a copy of a workspace made once, with a
deadline, checking the exception, its message and every file on disk afterwards.
"""

from __future__ import annotations

import re
import shutil
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

import optuna
import pytest

import helios.trainer as hlt
from benchmarks.campaign.checkpoints import leftovers
from benchmarks.campaign.results import CaseResult, Outcome, Tally
from tests.faults.bad_input.parts import (
    NAME,
    STUDY,
    FaultyPlugin,
    Row,
    Workspace,
    trainer,
)
from tests.trainer.helpers import ClassifierData, ClassifierModel

#: A row running longer than this has hung.
ROW_LIMIT = 60.0


def make_template(root: Path) -> Path:
    """A real run's checkpoints (iterations 3 and 6, with the "faulty" plug-in's state)
    and a SQLite study with one finished trial, as the rows' starting point."""
    ws = Workspace(root)
    run = trainer(ws, total_steps=6)
    run.register_plugin(FaultyPlugin(ws))
    run.fit(ClassifierModel(NAME), ClassifierData(80, 8))
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(study_name=STUDY, storage=ws.study_url, direction="minimize")
        trial = study.ask()
        trial.suggest_float("lr", 0.01, 0.1)
        study.tell(trial, 0.5)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return root


def _files(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


class RowHung(BaseException):
    """Raised by the SIGALRM deadline of a row."""


def _on_alarm(signum: int, frame: object) -> None:
    raise RowHung


def _raise_within(ws: Workspace, row: Row) -> BaseException | None:
    deadline = threading.current_thread() is threading.main_thread()
    if deadline:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, ROW_LIMIT)
    try:
        row.call(ws)
    except BaseException as error:
        return error
    finally:
        if deadline:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return None


def check_row(row: Row, ws: Workspace) -> CaseResult:
    """Run ``row`` in ``ws``: the exception and its message, and what is on disk after."""
    if row.prepare is not None:
        row.prepare(ws)
    before = _files(ws.root)
    raised = _raise_within(ws, row)
    if isinstance(raised, RowHung):
        return CaseResult(row.id, (f"no answer within {ROW_LIMIT:.0f} s",), hung=True)
    ws.extra["raised"] = raised
    problems: list[str] = []
    damaged: list[str] = []
    if raised is None:
        problems.append(f"nothing was raised; expected {row.error.__name__}")
    elif not isinstance(raised, row.error):
        problems.append(f"raised {type(raised).__name__}: {raised}; expected {row.error.__name__}")
    elif not re.search(row.match, str(raised), re.DOTALL):
        problems.append(f"the message {str(raised)!r} does not match {row.match!r}")
    if row.unchanged and (not ws.thrown or raised is not ws.thrown[-1]):
        problems.append("the hook's exception did not leave unchanged (replaced or wrapped)")
    after = _files(ws.root)
    changed = sorted(
        str(path.relative_to(ws.root)) for path in before if after.get(path) != before[path]
    )
    if changed:
        damaged.append(f"files already written changed: {changed}")
    for path in hlt.find_checkpoints(ws.folder):
        if path not in ws.planted:
            try:
                hlt.load_checkpoint(path)
            except hlt.CheckpointError as error:
                damaged.append(f"{path.name} cannot be loaded any more: {error}")
    if leftovers(ws.folder):
        problems.append(f"temporary files remain: {leftovers(ws.folder)}")
    if row.after is not None:
        problems.extend(row.after(ws))
    return CaseResult(row.id, (*problems, *damaged), lost=bool(damaged))


def workspace(template: Path, where: Path) -> Workspace:
    """A copy of ``template`` (see `make_template`) for one row."""
    shutil.copytree(template, where)
    return Workspace(where)


def run_matrix(workdir: Path, rows: Sequence[Row]) -> Outcome:
    """Every row of ``rows`` (rows that do not apply here are left out)."""
    tally = Tally("bad-input matrix")
    template = make_template(workdir / "template")
    for index, row in enumerate(rows):
        if row.skip is not None:
            tally.add(CaseResult(row.id, skipped=row.skip))
            continue
        tally.add(check_row(row, workspace(template, workdir / f"row-{index:03d}")))
    return tally.outcome()


def parametrize(rows: Sequence[Row]) -> pytest.MarkDecorator:
    """``rows`` as the parameter ``row`` of a test, by their ids; a row that does not
    apply here is skipped, saying why."""
    return pytest.mark.parametrize(
        "row",
        [
            pytest.param(
                row,
                id=row.id,
                marks=pytest.mark.skipif(row.skip is not None, reason=str(row.skip)),
            )
            for row in rows
        ],
    )


def assert_refused(row: Row, template: Path, tmp_path: Path) -> None:
    """Run ``row`` in a copy of ``template``: every check of `check_row` must pass."""
    case = check_row(row, workspace(template, tmp_path / "ws"))
    assert case.problems == ()

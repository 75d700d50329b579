"""The example study on a real PostgreSQL server (a private one, see conftest.py).

Each "machine" is a `python -m helios.examples.tune` process with a working folder of its
own; the study lives on the server and the checkpoints in one shared folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

import helios.trainer as hlt
from helios.examples import tune
from helios.examples.postgres import Cluster, free_port
from tests.examples.concurrent import open_together

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
STUDY = "helios-digits"
Popen = subprocess.Popen[str]
EXAMPLE = (sys.executable, "-m", "helios.examples.tune")


def test_workers_starting_at_once_create_the_schema_once(
    postgres_url: str, tmp_path: Path
) -> None:
    assert open_together(postgres_url, tmp_path) == ["ok"] * 3


class Machines:
    """Study workers, as other machines would start them (each with its own working folder).

    Every one is killed at the end of the test if it still runs.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[subprocess.Popen[str]] = []

    def start(self, name: str, url: str, *flags: str, url_in_env: bool = False) -> Popen:
        storage = [] if url_in_env else ["--storage", url]
        shared = str(self.root / "shared")
        folders = ["--workdir", str(self.root / name), "--checkpoint-dir", shared]
        process = subprocess.Popen(
            [*EXAMPLE, *folders, *storage, "--pruner", "none", *flags],
            cwd=ROOT,
            env={**os.environ, "OPTUNA_STORAGE": url} if url_in_env else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=30)


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[Machines]:
    started = Machines(tmp_path)
    try:
        yield started
    finally:
        started.stop()


def finish(process: Popen, timeout: float = 240) -> tuple[str, str]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out, err


def trials_of(url: str) -> list[FrozenTrial]:
    storage = optuna.storages.RDBStorage(url)
    try:
        return optuna.load_study(study_name=STUDY, storage=storage).get_trials()
    finally:
        storage.engine.dispose()


def assert_clean(errors: Sequence[str]) -> None:
    for err in errors:
        assert "Traceback" not in err
        assert "locked" not in err


@pytest.mark.slow
def test_two_machines_fill_one_study(
    postgres_url: str, tmp_path: Path, machines: Machines
) -> None:
    # Both start at the same moment on an empty database; one reads OPTUNA_STORAGE.
    flags = ("--n-trials", "2", "--epochs", "1")
    first = machines.start("a", postgres_url, *flags)
    second = machines.start("b", postgres_url, *flags, url_in_env=True)
    (out_a, err_a), (out_b, err_b) = finish(first), finish(second)
    assert_clean([err_a, err_b])

    trials = trials_of(postgres_url)
    assert [t.number for t in trials] == [0, 1, 2, 3]  # 2 + 2 requested, no more
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    workers = [t.user_attrs[tune.study.ATTR_WORKER] for t in trials]
    assert sorted(workers.count(worker) for worker in set(workers)) == [2, 2]
    names = [t.user_attrs[tune.study.ATTR_SAVE_NAME] for t in trials]
    assert sorted(names) == [f"digits_trial-{n}" for n in range(4)]  # none run twice
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4  # nor its parameters
    for name in names:  # every trial's checkpoint is in the shared folder, none in a workdir
        assert [p.name for p in hlt.find_checkpoints(tmp_path / "shared" / name)] == [
            "epoch_1_iter_17.pth"
        ]
    assert not (tmp_path / "a" / "checkpoints").exists()
    for out in (out_a, out_b):
        assert out.count(" COMPLETE accuracy ") == 2

    # Optuna's own command line reads the example's study.
    optuna_cli = str(Path(sys.executable).parent / "optuna")
    listed = subprocess.run(
        [optuna_cli, "trials", "--storage", postgres_url, "--study-name", STUDY, "-f", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(listed.stdout)
    assert sorted(row["number"] for row in rows) == [0, 1, 2, 3]
    assert {row["state"] for row in rows} == {"COMPLETE"}


def running_trial_of(url: str, pid: int) -> FrozenTrial | None:
    try:
        trials = trials_of(url)
    except KeyError:  # no study yet
        return None
    for trial in trials:
        worker = str(trial.user_attrs.get(tune.study.ATTR_WORKER, ""))
        if trial.state == TrialState.RUNNING and worker.endswith(f":{pid}"):
            return trial
    return None


@pytest.mark.slow
def test_a_machine_dies_and_the_other_resumes_its_trial(
    postgres_url: str, tmp_path: Path, machines: Machines
) -> None:
    heartbeat = ("--heartbeat", "1", "--grace", "2", "--epochs", "4", "--step-delay", "0.02")
    survivor = machines.start("a", postgres_url, *heartbeat, "--n-trials", "4")
    victim = machines.start("b", postgres_url, *heartbeat, "--n-trials", "1")
    deadline = time.monotonic() + 120
    try:
        folder = None
        while folder is None or tune.study.resume_epoch(folder) < 2:
            assert victim.poll() is None, "the victim finished before it could be killed"
            assert time.monotonic() < deadline, "the victim wrote no checkpoints"
            trial = running_trial_of(postgres_url, victim.pid)
            if trial is not None and tune.study.ATTR_SAVE_NAME in trial.user_attrs:
                folder = tmp_path / "shared" / str(trial.user_attrs[tune.study.ATTR_SAVE_NAME])
            time.sleep(0.2)
        os.kill(victim.pid, signal.SIGKILL)  # the machine dies mid-trial
    finally:
        victim.communicate(timeout=30)
    done_at_kill = tune.study.resume_epoch(folder)
    out, err = finish(survivor)
    assert_clean([err])

    trials = trials_of(postgres_url)
    [dead] = [t for t in trials if t.state == TrialState.FAIL]
    [retry] = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs[tune.study.ATTR_WORKER].endswith(f":{survivor.pid}")
    assert retry.user_attrs[tune.study.ATTR_SAVE_NAME] == f"digits_trial-{dead.number}"
    assert retry.user_attrs[tune.study.ATTR_START] == done_at_kill >= 2  # resumed, not restarted
    assert min(retry.intermediate_values) == done_at_kill + 1
    # The survivor ran its 4 trials (the retry among them), each trial once.
    assert len(trials) == 5
    assert sorted(t.state.name for t in trials).count("COMPLETE") == 4
    assert f"[retries trial {dead.number}]" in out


@pytest.mark.slow
@pytest.mark.distributed
def test_distributed_trials_in_a_distributed_study(postgres_url: str, machines: Machines) -> None:
    flags = ("--procs", "2", "--n-trials", "1", "--epochs", "1")
    workers = [machines.start(name, postgres_url, *flags) for name in ("a", "b")]
    assert_clean([finish(worker)[1] for worker in workers])
    trials = trials_of(postgres_url)
    assert [t.number for t in trials] == [0, 1]
    for trial in trials:
        assert trial.state == TrialState.COMPLETE
        assert trial.value == trial.intermediate_values[1]  # rank 0 sent it from its process


def test_password_is_never_shown(
    postgres: Cluster, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = "Hush-7f3a9c"
    postgres.add_password_role("guarded", secret)
    postgres.create_database("guarded_study")
    refused_url = postgres.url("guarded_study", "guarded", "not-" + secret + "-either")
    accepted_url = postgres.url("guarded_study", "guarded", secret)
    # A wrong password: one line naming the server (password masked), exit status 3.
    workdir = str(tmp_path / "refused")
    assert tune.main(["--workdir", workdir, "--storage", refused_url]) == 3
    out, err = capfd.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith(
        f"error: cannot use the study storage postgresql+psycopg://guarded:***@127.0.0.1:"
        f"{postgres.port}/guarded_study: "
    )
    assert "password authentication failed" in line
    assert secret not in err
    # The right one: the study runs, and nothing it prints or writes holds the password.
    short = ("--epochs", "1", "--n-trials", "1")
    accepted = subprocess.run(
        [*EXAMPLE, "--workdir", str(tmp_path / "accepted"), "--storage", accepted_url, *short],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert f"in postgresql+psycopg://guarded:***@127.0.0.1:{postgres.port}" in accepted.stdout
    assert secret not in accepted.stdout + accepted.stderr
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written  # the checkpoints, at least
    for path in written:
        assert secret.encode() not in path.read_bytes(), path


def test_nobody_listening_is_one_clear_line(
    postgres: Cluster, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    url = f"postgresql+psycopg://guarded:Hush-7f3a9c@127.0.0.1:{port}/study"
    assert tune.main(["--workdir", str(tmp_path), "--storage", url]) == 3
    out, err = capfd.readouterr()
    [line] = err.splitlines()
    assert line.startswith(
        f"error: cannot use the study storage postgresql+psycopg://guarded:***@127.0.0.1:{port}"
        "/study: "
    )
    assert "Connection refused" in line
    assert "Check that the database server runs" in line
    assert "Hush-7f3a9c" not in out + err

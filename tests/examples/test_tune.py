"""The tuning example (`helios.examples.tune`) end to end, on real SQLite studies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

import helios.trainer as hlt
from helios.examples import tune

ROOT = Path(__file__).resolve().parents[2]


def command(workdir: Path, *flags: str) -> list[str]:
    """Options for a tiny study in ``workdir`` (2 epochs per trial unless overridden)."""
    return ["--workdir", str(workdir), "--epochs", "2", *flags]


def stored_trials(workdir: Path) -> list[FrozenTrial]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{workdir / 'helios-tune.db'}")
    try:
        study = optuna.load_study(study_name="helios-digits", storage=storage)
        return study.get_trials()
    finally:
        storage.engine.dispose()


def test_runs_end_to_end_then_continues_the_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tune.main(command(tmp_path, "--n-trials", "2")) == 0
    out = capsys.readouterr().out
    assert "(new study)" in out
    assert "trial   0 COMPLETE accuracy 0." in out
    assert "epochs   2/2  hidden=" in out
    for expected in (
        "== study 'helios-digits': 2 trials (2 finished in this run,",
        "trials: 2 complete, 0 pruned, 0 fail",
        "best params: hidden=",
        "best validation accuracy: 0.",
        "(epoch_2_iter_34.pth, not retrained)",
        "training: 4 epochs run in",
        "pruning saved 0 epochs (0%)",
    ):
        assert expected in out
    assert len(stored_trials(tmp_path)) == 2

    assert tune.main(command(tmp_path, "--n-trials", "2")) == 0
    out = capsys.readouterr().out
    assert "(continuing, 2 trials so far)" in out
    assert "4 trials (2 finished in this run," in out
    trials = stored_trials(tmp_path)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for trial in trials:  # a finished trial keeps its newest checkpoint only
        folder = tmp_path / "checkpoints" / f"digits_trial-{trial.number}"
        assert [p.name for p in hlt.find_checkpoints(folder)] == ["epoch_2_iter_34.pth"]


def test_workers_share_one_storage(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert tune.main(command(tmp_path, "--workers", "2", "--n-trials", "3")) == 0
    out, err = capfd.readouterr()
    trials = stored_trials(tmp_path)
    assert len(trials) == 3
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert "3 trials (3 finished in this run," in out
    assert "Traceback" not in err


def test_killed_trial_is_retried_from_its_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A slowed-down study whose process is killed once trial 0 has written checkpoints.
    flags = ("--n-trials", "1", "--epochs", "6", "--heartbeat", "1", "--grace", "2")
    slowed = ["--workdir", str(tmp_path), *flags, "--step-delay", "0.03"]
    process = subprocess.Popen(
        [sys.executable, "-m", "helios.examples.tune", *slowed],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    folder = tmp_path / "checkpoints" / "digits_trial-0"
    deadline = time.monotonic() + 90
    try:
        while tune.study.resume_epoch(folder) < 2:
            assert process.poll() is None, "the study ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    done_at_kill = tune.study.resume_epoch(folder)
    assert 2 <= done_at_kill < 6
    [killed] = stored_trials(tmp_path)
    assert killed.state == TrialState.RUNNING  # nobody told Optuna

    time.sleep(3)  # let its heartbeat go stale (grace period: 2 s)
    assert tune.main(["--workdir", str(tmp_path), *flags]) == 0
    out = capsys.readouterr().out
    failed, retried = stored_trials(tmp_path)
    assert failed.state == TrialState.FAIL
    assert retried.state == TrialState.COMPLETE
    assert retried.system_attrs["failed_trial"] == 0
    assert retried.params == killed.params
    # It resumed from the checkpoint instead of starting over ...
    assert retried.user_attrs[tune.study.ATTR_START] == done_at_kill
    assert min(retried.intermediate_values) == done_at_kill + 1
    assert tune.epochs_run(retried) == 6 - done_at_kill
    # ... in the folder named after the original trial.
    assert retried.user_attrs[tune.study.ATTR_SAVE_NAME] == "digits_trial-0"
    assert [p.name for p in hlt.find_checkpoints(folder)] == ["epoch_6_iter_102.pth"]
    assert not (tmp_path / "checkpoints" / "digits_trial-1").exists()
    assert f"(resumed at {done_at_kill})" in out
    assert "[retries trial 0]" in out
    assert "trials: 1 complete, 0 pruned, 1 fail" in out


@pytest.mark.distributed
def test_one_distributed_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tune.main(command(tmp_path, "--procs", "2", "--n-trials", "1")) == 0
    [trial] = stored_trials(tmp_path)
    assert trial.state == TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2]
    assert trial.value == trial.intermediate_values[2]  # rank 0 sent it through the queue
    out = capsys.readouterr().out
    assert "2 training process(es) per trial" in out
    assert "test accuracy of trial 0: 0." in out


def test_missing_packages_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert tune.main(command(tmp_path, "--plot")) == 2
    assert "pip install -e '.[plot]'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert tune.main(command(tmp_path)) == 2
    assert "pip install scikit-learn" in capsys.readouterr().err
    assert not (tmp_path / "helios-tune.db").exists()


def test_bad_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        tune.parse_args(["--heartbeat", "5", "--grace", "2"])
    assert "--grace (2) must be longer than --heartbeat (5)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tune.parse_args(["--n-trials", "0"])

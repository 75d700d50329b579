"""`spawn` as a generic operation: jobs that are not trainers, real processes, gloo.

Which rank's failure is the root cause is decided by `root_cause`, a pure function of
the exit codes and the reports; the property tests pin it down for any arrival order,
and the process tests provoke the orders that made it go wrong.
"""

from __future__ import annotations

import os
import time

import attrs
import pytest
import torch.distributed as dist
from hypothesis import given
from hypothesis import strategies as st

import helios.trainer as hlt
from helios.trainer._distributed import Context
from helios.trainer._spawn import Launch, WorkerReport, root_cause, spawn


class SlowToPickle(RuntimeError):
    """Takes a while to pickle: the report of the rank that raises it arrives last."""

    def __reduce__(self) -> tuple[type[SlowToPickle], tuple[object, ...]]:
        time.sleep(1.5)
        return (SlowToPickle, self.args)


@attrs.frozen
class FailOnRank:
    """Rank ``rank`` fails (``how``: raise, raise-slowly, exit); the others wait at a
    barrier, which breaks when the failing rank leaves."""

    rank: int
    how: str

    def __call__(self, context: Context, /) -> None:
        if context.rank == self.rank:
            if self.how == "exit":
                os._exit(3)
            error = SlowToPickle if self.how == "raise-slowly" else KeyError
            raise error(f"rank {context.rank} failed on purpose")
        dist.barrier()


def report(rank: int, raised_at: float) -> WorkerReport:
    return WorkerReport(rank, "RuntimeError", "failed", "Traceback ...", raised_at)


two_reports = st.tuples(st.floats(0, 1e6), st.floats(0, 1e6)).filter(lambda t: t[0] != t[1])


@given(two_reports, st.booleans())
def test_the_first_raised_exception_wins_in_any_arrival_order(
    times: tuple[float, float], reverse: bool
) -> None:
    reports = [report(0, times[0]), report(1, times[1])]
    expected = 0 if times[0] < times[1] else 1
    arrived = reports[::-1] if reverse else reports
    assert root_cause({0: 1, 1: 1}, arrived) == expected


@given(two_reports, st.sampled_from([0, 1]), st.sampled_from([-9, -6, 2]))
def test_a_rank_that_could_not_report_wins_over_any_report(
    times: tuple[float, float], silent: int, code: int
) -> None:
    reports = [report(rank, times[rank]) for rank in (0, 1) if rank != silent]
    assert root_cause({0: 1, 1: 1} | {silent: code}, reports) == silent


def test_a_signal_death_wins_over_a_silent_exit() -> None:
    assert root_cause({0: 2, 1: -9}, []) == 1
    assert root_cause({0: -15, 1: -9}, []) == 0


@pytest.mark.distributed
def test_the_root_cause_is_raised_though_its_echo_reports_first() -> None:
    # Rank 1 raises; rank 0's barrier then breaks and rank 0 reports and exits at once,
    # while rank 1 is still pickling its exception: the echo arrives first.
    launch = Launch(world_size=2, timeout=60, label="job")
    with pytest.raises(hlt.WorkerError, match="job failed on rank 1") as caught:
        spawn(FailOnRank(1, "raise-slowly"), launch)
    message = str(caught.value)
    assert caught.value.rank == 1
    assert "SlowToPickle: rank 1 failed on purpose" in message
    assert "Traceback" in message
    assert "rank 0 then failed with" in message  # the echo was there, and came second
    assert isinstance(caught.value.__cause__, SlowToPickle)


@pytest.mark.distributed
def test_a_passthrough_exception_leaves_unchanged() -> None:
    launch = Launch(world_size=2, timeout=60, passthrough=(KeyError,))
    with pytest.raises(KeyError, match="rank 0 failed on purpose"):
        spawn(FailOnRank(0, "raise"), launch)


@pytest.mark.distributed
def test_a_rank_that_dies_without_a_report_gets_the_import_hint() -> None:
    launch = Launch(world_size=2, timeout=60, label="fit")
    with pytest.raises(hlt.WorkerError, match="rank 1 exited with code 3") as caught:
        spawn(FailOnRank(1, "exit"), launch)
    assert "if __name__ == '__main__':" in str(caught.value)
    assert caught.value.rank == 1


def test_a_job_that_does_not_pickle_is_refused_before_any_process_starts() -> None:
    def job(context: Context, /) -> None:
        pass

    with pytest.raises(TypeError, match=r"cannot start the worker processes.*picklable"):
        spawn(job, Launch(world_size=2))

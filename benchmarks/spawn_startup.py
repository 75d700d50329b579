"""What a 2-process fit started by the trainer listens on, and how long it takes to start.

Compares two versions of helios in one run: the working tree ("after") and the
``helios/`` package of a git revision ("before", extracted with ``git archive`` into a
temporary folder). Each measurement is a fresh Python process (``--child``) that imports
one version, runs ``Trainer(use_cpu=True, cpu_processes=2).fit`` on a tiny classifier
(4 optimiser steps) and reports:

* ``start-up``: from the call to ``fit`` to rank 0's first training batch (a clock all
  processes of the machine share, `time.monotonic`), which covers starting the workers,
  importing torch in them, the rendezvous and building the process group;
* ``fit``: the whole ``fit`` call;
* the listening TCP sockets of the run's processes (the main process and every process
  below it), polled every 20 ms from ``/proc`` while ``fit`` runs.

Runs alternate before / after, the order flipping every pair (AB BA AB ...); the table
gives medians and the median of the paired ratios after / before.

Usage::

    python benchmarks/spawn_startup.py --before <revision>          # 5 pairs
    python benchmarks/spawn_startup.py --before <revision> --runs 9
    python benchmarks/spawn_startup.py --before <revision> --gloo-ifname eth0
    python benchmarks/spawn_startup.py                                # this tree only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # After PYTHONPATH: a measurement of the "before" version imports its helios first.
    sys.path.append(str(ROOT))

from tests.trainer.helpers import ClassifierData, ClassifierModel  # noqa: E402
from tests.trainer.sockets import descendants, listening_sockets  # noqa: E402


class FirstBatch(ClassifierModel):
    """Rank 0 sends the time of its first training batch to the main process."""

    def train_step(self, batch: Any, state: Any) -> None:
        if self.rank == 0 and state.global_iteration == 1:
            queue = self.trainer.queue
            assert queue is not None
            queue.put(time.monotonic())
        super().train_step(batch, state)


def child() -> None:
    """One measurement, in this process; prints one JSON line."""
    import helios.trainer as hlt

    print(f"helios from {Path(hlt.__file__).parents[2]}", file=sys.stderr)
    trainer = hlt.Trainer(
        train_unit="iteration", total_steps=4, use_cpu=True, cpu_processes=2, random_seed=0
    )
    seen: set[str] = set()
    done = threading.Event()
    main = os.getpid()

    def watch() -> None:
        while not done.wait(0.02):
            for listener in listening_sockets(descendants(main)):
                role = "main" if listener.pid == main else "worker"
                seen.add(f"{listener.address} {listener.port} {listener.pid} {role}")

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.monotonic()
    trainer.fit(FirstBatch("startup"), ClassifierData(64, 4, plain=True))
    took = time.monotonic() - start
    done.set()
    watcher.join()
    assert trainer.queue is not None
    first = trainer.queue.get(timeout=30)
    print(json.dumps({"startup": first - start, "fit": took, "listeners": sorted(seen)}))


def extract(revision: str, into: Path) -> Path:
    """The ``helios/`` package of ``revision``, unpacked under ``into``."""
    archive = into / "helios.tar"
    with archive.open("wb") as out:
        subprocess.run(
            ["git", "archive", "--format=tar", revision, "helios"],
            cwd=ROOT,
            stdout=out,
            check=True,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(tree: Path, gloo_ifname: str | None) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    if gloo_ifname:
        env["GLOO_SOCKET_IFNAME"] = gloo_ifname
    done = subprocess.run(
        [sys.executable, __file__, "--child"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"a measurement failed ({tree}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def listeners_summary(runs: list[dict[str, Any]]) -> str:
    """The listening sockets of the first run, ports shown as they were."""
    lines = []
    for entry in runs[0]["listeners"]:
        address, port, pid, role = entry.split()
        host = f"[{address}]" if ":" in address else address
        lines.append(f"{host}:{port} ({role} pid {pid})")
    return ", ".join(lines) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="git revision to compare with (its helios/ package)")
    parser.add_argument("--runs", type=int, default=5, help="pairs of runs (default 5)")
    parser.add_argument("--gloo-ifname", help="set GLOO_SOCKET_IFNAME for every run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child()
        return
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"after": ROOT}
        if options.before:
            trees = {"before": extract(options.before, Path(scratch)), "after": ROOT}
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        names = list(trees)
        for index in range(options.runs):
            for name in names if index % 2 == 0 else names[::-1]:
                results[name].append(measure(trees[name], options.gloo_ifname))
                print(f"run {index + 1} {name}: {results[name][-1]['startup']:.2f} s", flush=True)
    print()
    print(f"{'version':<8} {'start-up s (median)':>20} {'fit s (median)':>15}")
    for name, runs in results.items():
        startup = statistics.median(run["startup"] for run in runs)
        fit = statistics.median(run["fit"] for run in runs)
        print(f"{name:<8} {startup:>20.2f} {fit:>15.2f}")
    if "before" in results:
        for key in ("startup", "fit"):
            ratios = [
                after[key] / before[key]
                for before, after in zip(results["before"], results["after"], strict=True)
            ]
            print(
                f"after / before, {key}: median of paired ratios {statistics.median(ratios):.3f}"
            )
    print()
    for name, runs in results.items():
        print(f"listening sockets, {name}: {listeners_summary(runs)}")


if __name__ == "__main__":
    main()

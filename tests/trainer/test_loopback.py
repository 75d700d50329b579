"""A run the trainer spawns on one machine opens nothing to the network.

Looked at from outside, as an attacker on the machine's network would: while a 2-process
fit runs, a thread lists the listening TCP sockets of this process and every process
below it, and each must be bound to a loopback address.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

import helios.trainer as hlt
from helios.core import TrainingState
from tests.trainer.helpers import ClassifierData, ReportingClassifier
from tests.trainer.sockets import Listener, descendants, is_loopback, listening_sockets

pytestmark = pytest.mark.distributed


class Watcher(threading.Thread):
    """Collects the listening sockets of this process's tree until told to stop."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: set[Listener] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.seen.update(listening_sockets(descendants(os.getpid())))


class FolderReporter(ReportingClassifier):
    """Rank 0 sends what the temporary folder holds during training to the parent."""

    def __init__(self, folder: str) -> None:
        super().__init__("loopback")
        self.folder = folder

    def train_step(self, batch: Any, state: TrainingState) -> None:
        if self.rank == 0 and state.global_iteration == 1:
            assert self.trainer.queue is not None
            entries = [
                (str(path.relative_to(self.folder)), stat.S_IMODE(path.stat().st_mode))
                for path in sorted(Path(self.folder).rglob("*"))
            ]
            self.trainer.queue.put(entries)
        super().train_step(batch, state)


def a_network_interface() -> str | None:
    """A non-loopback interface with an IPv4 address, if this machine has one."""
    for _, name in socket.if_nameindex():
        flags = Path(f"/sys/class/net/{name}/flags")
        if flags.exists() and int(flags.read_text(), 16) & 0x8:
            continue
        if Path(f"/sys/class/net/{name}/operstate").read_text().strip() == "up":
            return name
    return None


def test_a_spawned_run_listens_on_loopback_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interface = a_network_interface()
    if interface is not None:
        # Left alone, gloo would listen on this interface: the run must not.
        monkeypatch.setenv("GLOO_SOCKET_IFNAME", interface)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    trainer = hlt.Trainer(
        train_unit="iteration", total_steps=4, use_cpu=True, cpu_processes=2, random_seed=2
    )
    watcher = Watcher()
    watcher.start()
    try:
        trainer.fit(FolderReporter(str(tmp_path)), ClassifierData(64, 4, plain=True))
    finally:
        watcher.done.set()
        watcher.join()

    # gloo's own listeners (one a rank) were seen: the look was taken during the run.
    assert len({listener.pid for listener in watcher.seen}) >= 2, watcher.seen
    exposed = [str(listener) for listener in watcher.seen if not is_loopback(listener.address)]
    assert exposed == [], f"listening beyond loopback: {exposed}"

    assert trainer.queue is not None
    entries = trainer.queue.get(timeout=30)
    folders = [(n, mode) for n, mode in entries if n.startswith("helios-run-") and "/" not in n]
    assert len(folders) == 1, entries
    name, mode = folders[0]
    assert mode == 0o700, f"{name} has mode {mode:o}"
    assert f"{name}/store" in dict(entries), entries
    assert not list(tmp_path.glob("helios-run-*")), "the rendezvous folder outlived the run"

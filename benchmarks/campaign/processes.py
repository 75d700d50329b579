"""Runs in forked children, deaths by SIGKILL, and the processes left behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, NoReturn

import torch

#: Seed of the kill points, ranks and delays; set HELIOS_FAULT_SEED to try others.
SEED = int(os.environ.get("HELIOS_FAULT_SEED", "20240607"))
#: A forked child that runs longer than this has hung (it is killed and counted).
CHILD_TIMEOUT = 120.0


FORK = multiprocessing.get_context("fork")


def _child_main(target: Callable[..., None], args: tuple[Any, ...]) -> None:
    # Forked from a process whose thread pools may be running: one thread, as torch's
    # own forked DataLoader workers do.
    torch.set_num_threads(1)
    target(*args)


def start_forked(target: Callable[..., None], *args: Any) -> BaseProcess:
    """Start ``target(*args)`` in a child forked from this process."""
    process = FORK.Process(target=_child_main, args=(target, args), daemon=True)
    process.start()
    return process


def finish(process: BaseProcess, timeout: float = CHILD_TIMEOUT) -> int | None:
    """Wait for ``process``; its exit code, or ``None`` if it hung (it is then killed)."""
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
        return None
    return process.exitcode


def warm_up() -> None:
    """Import here, once, what every forked child would otherwise import on its own.

    ``torch.use_deterministic_algorithms`` (``enable_deterministic=True``) imports torch's
    compiler stack the first time it is called: over a second per child. Setting the
    flag to its current value does the import and changes nothing.
    """
    torch.use_deterministic_algorithms(
        torch.are_deterministic_algorithms_enabled(),
        warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
    )


def run_forked(target: Callable[..., None], *args: Any) -> int | None:
    """`start_forked` then `finish`."""
    return finish(start_forked(target, *args))


def sigkill_self() -> NoReturn:
    """Die at once, as a machine losing power or the OOM killer would end the process."""
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)
    raise AssertionError("SIGKILL did not end the process")


def replace_attribute(owner: object, name: str, value: object) -> Callable[[], None]:
    """Set ``owner.name`` to ``value`` (test-side patching); return the undo."""
    old = getattr(owner, name)
    setattr(owner, name, value)

    def undo() -> None:
        setattr(owner, name, old)

    return undo


def child_processes() -> dict[int, str]:
    """Children of this process (zombies included): pid -> state and command line."""
    me = os.getpid()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = status[status.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            found[int(entry.name)] = f"[{fields[0]}] " + command.replace(b"\0", b" ").decode(
                errors="replace"
            )
    return found

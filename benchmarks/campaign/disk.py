"""Scenario 3: the disk fills up during a checkpoint write."""

from __future__ import annotations

import ctypes
import errno
import io
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import attrs
import torch

import helios.trainer as hlt
from benchmarks.campaign.checkpoints import (
    Weights,
    leftovers,
    weights_damage,
)
from benchmarks.campaign.processes import (
    replace_attribute,
    run_forked,
    warm_up,
)
from benchmarks.campaign.results import CaseResult, Outcome, Tally
from benchmarks.campaign.sweep import sweep_data, sweep_trainer
from benchmarks.campaign.workload import Classifier, weights

FULL_NAME = "filled"
FULL_STEPS = 12
#: The first write after resuming from iteration 6 is the one that fails.
FULL_FAILS_AT = 9
DISK_FULL_KINDS = ("torch.save", "write", "fsync", "mkstemp", "tmpfs")
#: What the CheckpointError of a full disk must say.
FULL_MESSAGE = (
    rf"could not write checkpoint \S*epoch_0_iter_{FULL_FAILS_AT}\.pth: .*No space left on "
    r"device.*earlier checkpoints are intact; free disk space"
)


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FillingFile(io.FileIO):
    """A file on a disk with ``room`` bytes left: writes beyond it fail with ENOSPC."""

    def __init__(self, fd: int, room: int) -> None:
        super().__init__(fd, "wb", closefd=True)
        self.room = room

    def write(self, data: Any, /) -> int:
        if self.room <= 0:
            raise _enospc()
        view = memoryview(data).cast("B")[: self.room]
        written = super().write(view)
        self.room -= written
        return written


def _inject_full_disk(kind: str) -> Callable[[], None]:
    """In the child: make checkpoint writes fail with ENOSPC; return the undo."""
    if kind == "torch.save":
        real_save = torch.save

        def save(obj: object, f: Any, *args: Any, **kwargs: Any) -> None:
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            raise _enospc()

        return replace_attribute(torch, "save", save)
    if kind == "write":
        real_fdopen = os.fdopen

        def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if mode != "wb":
                return real_fdopen(fd, mode, *args, **kwargs)
            return io.BufferedWriter(_FillingFile(fd, room=8192))

        return replace_attribute(os, "fdopen", fdopen)
    if kind == "fsync":
        real_fsync = os.fsync

        def fsync(fd: Any) -> None:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                raise _enospc()
            real_fsync(fd)

        return replace_attribute(os, "fsync", fsync)
    if kind == "mkstemp":

        def mkstemp(*args: Any, **kwargs: Any) -> NoReturn:
            raise _enospc()

        return replace_attribute(tempfile, "mkstemp", mkstemp)
    raise ValueError(f"unknown kind {kind!r}")


_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_REMOUNT = 32
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18


def _mount_private_tmpfs(target: Path, size: int) -> Callable[[], None] | str:
    """In a (single-threaded) child: mount a ``size``-byte tmpfs on ``target`` in a mount
    namespace of its own (and a user namespace when not root). Returns the function that
    grows it to 64 MiB ("frees space"), or why it could not be mounted."""
    libc = ctypes.CDLL(None, use_errno=True)

    def failed(what: str) -> str:
        return f"{what}: {os.strerror(ctypes.get_errno())}"

    try:
        if os.geteuid() != 0:
            uid, gid = os.getuid(), os.getgid()
            if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS) != 0:
                return failed("unshare(CLONE_NEWUSER | CLONE_NEWNS)")
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
            Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
        elif libc.unshare(_CLONE_NEWNS) != 0:
            return failed("unshare(CLONE_NEWNS)")
    except OSError as error:
        return f"cannot enter a user namespace: {error}"
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return failed("mount --make-rprivate /")
    where = os.fsencode(target)
    if libc.mount(b"tmpfs", where, b"tmpfs", 0, f"size={size}".encode()) != 0:
        return failed("mount -t tmpfs")

    def grow() -> None:
        if libc.mount(b"tmpfs", where, b"tmpfs", _MS_REMOUNT, b"size=64m") != 0:
            raise OSError(ctypes.get_errno(), "remounting the tmpfs failed")

    return grow


def _pages(size: int) -> int:
    return -(-size // 4096) * 4096


def _fill_disk(kind: str, template: str, place: str, out: str, report: str) -> None:
    """Child: resume the template's run on a disk that fills at the next checkpoint
    write; check what is on disk; free the space; resume; write a JSON report."""
    result: dict[str, Any] = {}
    root = Path(place)
    root.mkdir(parents=True)
    free_space: Callable[[], None]
    if kind == "tmpfs":
        files = sorted((Path(template) / FULL_NAME).iterdir())
        # Room for the checkpoints there are and half of the next one.
        size = sum(_pages(f.stat().st_size) for f in files) + files[-1].stat().st_size // 2
        mounted = _mount_private_tmpfs(root, size)
        if isinstance(mounted, str):
            Path(report).write_text(json.dumps({"unavailable": mounted}))
            return
        free_space = mounted
    shutil.copytree(template, root, dirs_exist_ok=True)
    folder = root / FULL_NAME
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    if kind != "tmpfs":
        free_space = _inject_full_disk(kind)
    try:
        sweep_trainer(root, FULL_STEPS).fit(Classifier(FULL_NAME), sweep_data())
        result["error"] = None
    except Exception as error:
        result["error"] = f"{type(error).__module__}.{type(error).__qualname__}"
        result["message"] = str(error)
    after = {path.name: path.read_bytes() for path in folder.iterdir()}
    result["changed"] = sorted(name for name in before if after.get(name) != before[name])
    result["new"] = sorted(set(after) - set(before))
    free_space()
    model = Classifier(FULL_NAME)
    try:
        sweep_trainer(root, FULL_STEPS).fit(model, sweep_data())
        torch.save(weights(model), out)
    except Exception as error:
        result["resume_error"] = f"{type(error).__name__}: {error}"
    result["checkpoints"] = [path.name for path in hlt.find_checkpoints(folder)]
    result["leftovers"] = leftovers(folder)
    Path(report).write_text(json.dumps(result))


@attrs.frozen
class DiskFullSetup:
    """Checkpoints at iterations 3 and 6 to resume from, and the uninterrupted run."""

    template: Path
    weights: Weights
    checkpoints: list[str]


def _train_plain(root: str, steps: int, out: str) -> None:
    model = Classifier(FULL_NAME)
    sweep_trainer(Path(root), steps).fit(model, sweep_data())
    torch.save(weights(model), out)


def prepare_disk_full(workdir: Path) -> DiskFullSetup:
    """Make the template checkpoints and run the uninterrupted run."""
    warm_up()
    template = workdir / "template"
    if run_forked(_train_plain, str(template), 6, str(workdir / "six.pt")) != 0:
        raise RuntimeError("the run that makes the template checkpoints failed")
    reference = workdir / "reference"
    out = workdir / "reference.pt"
    if run_forked(_train_plain, str(reference), FULL_STEPS, str(out)) != 0:
        raise RuntimeError("the uninterrupted run failed")
    return DiskFullSetup(
        template,
        torch.load(out, weights_only=True),
        [path.name for path in hlt.find_checkpoints(reference / FULL_NAME)],
    )


def disk_full_case(setup: DiskFullSetup, kind: str, case_dir: Path) -> CaseResult:
    """Fill the disk at a checkpoint write (``kind``: see `DISK_FULL_KINDS`)."""
    name = {
        "torch.save": "torch.save writes half, then ENOSPC",
        "write": "a write inside torch.save hits ENOSPC",
        "fsync": "fsync reports ENOSPC (delayed allocation)",
        "mkstemp": "no room for the temporary file",
        "tmpfs": "a real tmpfs fills up",
    }[kind]
    case_dir.mkdir(parents=True)
    report = case_dir / "report.json"
    out = case_dir / "resumed.pt"
    code = run_forked(
        _fill_disk, kind, str(setup.template), str(case_dir / "disk"), str(out), str(report)
    )
    if code is None:
        return CaseResult(name, ("the run hung",), hung=True)
    if code != 0 or not report.exists():
        return CaseResult(name, (f"the child failed (exit code {code})",))
    result = json.loads(report.read_text())
    if "unavailable" in result:
        return CaseResult(name, skipped=f"no tmpfs here ({result['unavailable']})")
    problems: list[str] = []
    damaged: list[str] = []
    if result["error"] != "helios.trainer._checkpoint.CheckpointError":
        problems.append(f"fit raised {result['error']}: {result.get('message')}")
    elif not re.search(FULL_MESSAGE, result["message"]):
        problems.append(f"the message does not say what happened: {result['message']!r}")
    if result["changed"]:
        damaged.append(f"earlier checkpoints changed: {result['changed']}")
    if result["new"]:
        problems.append(f"files appeared although the write failed: {result['new']}")
    if "resume_error" in result:
        problems.append(f"resuming after freeing space failed: {result['resume_error']}")
    else:
        damaged.extend(weights_damage(torch.load(out, weights_only=True), setup.weights))
    if result["checkpoints"] != setup.checkpoints:
        damaged.append(f"checkpoints after resuming: {result['checkpoints']}")
    if result["leftovers"]:
        problems.append(f"temporary files remain: {result['leftovers']}")
    return CaseResult(name, (*problems, *damaged), lost=bool(damaged))


def disk_full(workdir: Path, kinds: Sequence[str] = DISK_FULL_KINDS) -> Outcome:
    tally = Tally("disk full during a checkpoint write")
    setup = prepare_disk_full(workdir)
    for kind in kinds:
        tally.add(disk_full_case(setup, kind, workdir / kind))
    return tally.outcome()

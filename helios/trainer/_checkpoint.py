"""Checkpoint files: atomic writes, safe loads, RNG capture."""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from helios.core import TrainingState
from helios.core.loop import parse_checkpoint_name, state_from_dict

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "capture_rng",
    "find_checkpoints",
    "load_checkpoint",
    "remove_partial_writes",
    "restore_rng",
    "save_checkpoint",
]

#: Bumped whenever the layout of a checkpoint changes.
FORMAT_VERSION = 1

_KEYS = frozenset({"version", "training_state", "model", "plugins", "rng", "data"})


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read, is unsafe, or does not belong to this run."""


def capture_rng() -> dict[str, Any]:
    """The state of every random generator helios knows of, as weights-only-safe values."""
    version, internal, gauss = random.getstate()
    states: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "torch": torch.get_rng_state(),
    }
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy ships with torch wheels
        pass
    else:
        kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
        assert not isinstance(keys, str)
        states["numpy"] = {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype("int64")),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: Mapping[str, Any]) -> None:
    """Restore what `capture_rng` returned."""
    python = states["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
    torch.set_rng_state(states["torch"])
    if "numpy" in states:
        import numpy as np

        saved = states["numpy"]
        np.random.set_state(
            (
                saved["kind"],
                saved["keys"].numpy().astype("uint32"),
                saved["pos"],
                saved["has_gauss"],
                saved["cached"],
            )
        )
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def find_checkpoints(folder: Path | str) -> list[Path]:
    """Checkpoint files in ``folder``, oldest first (by epoch, then iteration)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found: list[tuple[int, int, Path]] = []
    for path in folder.iterdir():
        parsed = parse_checkpoint_name(path.name)
        if parsed is not None and path.is_file():
            found.append((*parsed, path))
    return [path for _, _, path in sorted(found)]


def remove_partial_writes(folder: Path) -> None:
    """Delete temporary files left by writes that were interrupted (a killed process)."""
    if folder.is_dir():
        for leftover in folder.glob(".epoch_*.pth.*.tmp"):
            leftover.unlink(missing_ok=True)


def save_checkpoint(path: Path, content: Mapping[str, Any]) -> None:
    """Write ``content`` to ``path`` atomically.

    The data goes to a temporary file in the same folder, is flushed to disk, then
    renamed over ``path``: a reader sees either no file or the whole file, never a part.
    On failure the temporary file is removed and any older checkpoint is left untouched.

    The temporary file is readable by its owner alone (a write cut short by a killed
    process leaves nothing others can read); the finished checkpoint gets the mode the
    user's umask gives new files, as any file the user writes.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
    except OSError as error:
        raise _write_failed(path, error) from error
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(dict(content), stream)
            stream.flush()
            os.fsync(stream.fileno())
            with contextlib.suppress(OSError):
                # A file system that refuses modes keeps the owner-only one: narrower.
                os.fchmod(stream.fileno(), 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise _write_failed(path, error) from error
    except RuntimeError as error:
        Path(temporary).unlink(missing_ok=True)
        # torch.save reports a failed write (a full disk) as "unexpected pos ...", with
        # the OSError only as the context.
        reason = _os_error_behind(error)
        if reason is None:
            raise
        raise _write_failed(path, reason) from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _umask() -> int:
    """This process's umask, read without changing it where the system shows it."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _write_failed(path: Path, error: OSError) -> CheckpointError:
    return CheckpointError(
        f"could not write checkpoint {path}: {error}. Nothing was written under that "
        "name and the earlier checkpoints are intact; free disk space (or fix the "
        "folder's permissions) and resume."
    )


def _os_error_behind(error: BaseException) -> OSError | None:
    seen = error.__cause__ or error.__context__
    for _ in range(8):
        if seen is None or isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(descriptor)


def load_checkpoint(path: Path | str, map_location: Any = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint written by `save_checkpoint`.

    Only tensors and plain containers are accepted (``torch.load(weights_only=True)``).
    The file is only read, never changed.

    Raises:
        CheckpointError: naming the file, if it is missing, truncated, corrupt, unsafe
            (carries pickled objects), from another format version, or not a helios
            checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        content = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        # Damaged files fail anywhere in torch's readers, with all kinds of exceptions
        # (RuntimeError, EOFError, IndexError from the unpickler's stack, ...).
        raise _unreadable(path, error) from None
    if not isinstance(content, dict) or not set(content) >= _KEYS:
        raise CheckpointError(
            f"{path} is not a helios checkpoint (expected the keys {sorted(_KEYS)}). "
            f"{_NOTHING_CHANGED}"
        )
    if content["version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {content['version']!r}; this helios "
            f"reads version {FORMAT_VERSION}. {_NOTHING_CHANGED}"
        )
    try:
        content["training_state"] = state_from_dict(content["training_state"])
    except ValueError as error:
        raise CheckpointError(
            f"checkpoint {path} has a bad training state: {error}. {_NOTHING_CHANGED}"
        ) from None
    return content


#: What torch says when ``weights_only`` refuses an object, and how it names the object.
_WEIGHTS_ONLY = "Weights only load failed"
_UNSAFE_GLOBAL = re.compile(r"Unsupported (?:global|class): (?:GLOBAL )?([\w.]+)")
_NOTHING_CHANGED = "Nothing was changed: the file and the other checkpoints are as they were."


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _unreadable(path: Path, error: Exception) -> CheckpointError:
    if not zipfile.is_zipfile(path):
        # torch.save writes zip archives; torch.load reads anything else as a bare pickle,
        # so garbage fails in the unpickler, not as a corrupt archive.
        return _corrupt(path, "it is not the zip archive that torch.save writes")
    if isinstance(error, pickle.UnpicklingError) and _WEIGHTS_ONLY in str(error):
        unsafe = _UNSAFE_GLOBAL.search(str(error))
        what = "" if unsafe is None else f" (a pickled {unsafe[1]})"
        return CheckpointError(
            f"checkpoint {path} is refused: it holds objects other than tensors and plain "
            f"containers, which could run code when loaded{what}. {_NOTHING_CHANGED} Only "
            "load files you trust, and re-save them with plain state dicts."
        )
    return _corrupt(path, f"{type(error).__name__}: {_first_line(error)}")


def _corrupt(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is truncated or corrupt and cannot be read ({reason}). "
        f"{_NOTHING_CHANGED} Delete it to resume from the previous checkpoint."
    )


def training_state_of(content: Mapping[str, Any]) -> TrainingState:
    """The training state of a loaded checkpoint."""
    state = content["training_state"]
    assert isinstance(state, TrainingState)
    return state

"""A damaged checkpoint is always a `CheckpointError` that names the file and says that
nothing was changed, whatever the damage."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import helios.trainer as hlt
from helios.core import TrainingState
from helios.core.loop import state_to_dict
from helios.trainer._checkpoint import FORMAT_VERSION, save_checkpoint

NOTHING_CHANGED = "Nothing was changed"


def _zip_of_junk() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x04junk that is no pickle")
        archive.writestr("archive/version", b"3\n")
        archive.writestr("archive/data/0", bytes(range(256)))
    return buffer.getvalue()


def _real_checkpoint(folder: Path) -> bytes:
    path = folder / "epoch_1_iter_4.pth"
    content = {
        "version": FORMAT_VERSION,
        "training_state": state_to_dict(TrainingState(current_iteration=4, global_iteration=4)),
        "model": {"net": {"weight": torch.arange(64.0).reshape(8, 8)}},
        "plugins": {},
        "rng": [{"torch": torch.get_rng_state()}],
        "data": {"epoch": 1, "position": 0},
    }
    save_checkpoint(path, content)
    return path.read_bytes()


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _real_checkpoint(tmp_path_factory.mktemp("real"))


def _assert_refused(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    refusal: hlt.CheckpointError | None = None
    try:
        hlt.load_checkpoint(path)
    except hlt.CheckpointError as error:
        refusal = error
    if refusal is not None:
        assert str(path) in str(refusal)
        assert NOTHING_CHANGED in str(refusal)
    assert path.read_bytes() == data  # the loader never changes the file


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty", b""),
        ("text", b"this is not a checkpoint" * 40),
        ("random", bytes((i * 7919 + 13) % 256 for i in range(4096))),
        ("zip-of-junk", _zip_of_junk()),
        ("pickle-of-a-list", b"\x80\x04]\x94."),
    ],
)
def test_damaged_files_are_checkpoint_errors(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / "epoch_0_iter_1.pth"
    path.write_bytes(data)
    with pytest.raises(hlt.CheckpointError, match=NOTHING_CHANGED) as caught:
        hlt.load_checkpoint(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == data


def test_truncations_of_a_real_checkpoint_are_checkpoint_errors(
    tmp_path: Path, real_checkpoint: bytes
) -> None:
    path = tmp_path / "epoch_1_iter_4.pth"
    for length in (0, 1, 22, len(real_checkpoint) // 2, len(real_checkpoint) - 1):
        path.write_bytes(real_checkpoint[:length])
        with pytest.raises(hlt.CheckpointError, match="truncated or corrupt") as caught:
            hlt.load_checkpoint(path)
        assert str(path) in str(caught.value)


_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@_settings
@given(data=st.binary(max_size=2048))
@example(data=b"this is not a checkpoint" * 40)
@example(data=b"PK\x03\x04")
def test_random_bytes_never_leak_another_exception(tmp_path: Path, data: bytes) -> None:
    _assert_refused(tmp_path / "epoch_0_iter_1.pth", data)


@_settings
@given(cut=st.floats(0.0, 1.0, exclude_max=True), flips=st.lists(st.integers(0, 10**9)))
def test_truncated_or_flipped_checkpoints_never_leak_another_exception(
    tmp_path: Path, real_checkpoint: bytes, cut: float, flips: list[int]
) -> None:
    data = bytearray(real_checkpoint[: int(cut * len(real_checkpoint))])
    for flip in flips:
        if data:
            data[flip % len(data)] ^= 0xFF
    _assert_refused(tmp_path / "epoch_1_iter_4.pth", bytes(data))

"""The bad-input matrix: missing, corrupt, foreign and unsafe checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import helios.trainer as hlt
from tests.faults.bad_input.parts import (
    NAME,
    Row,
    Workspace,
    fit,
    run_test,
)
from tests.faults.bad_input.runner import assert_refused, parametrize
from tests.trainer.helpers import ClassifierModel


class WiderModel(ClassifierModel):
    """Another network under the same save name."""

    def setup(self, fast_init: bool = False) -> None:
        super().setup(fast_init)
        self.plain_net = torch.nn.Sequential(torch.nn.Linear(8, 5))
        self.net = self.plain_net
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.1)


# -- checkpoints -----------------------------------------------------------------------


def _truncated(ws: Workspace) -> bytes:
    data = ws.newest.read_bytes()
    return data[: len(data) // 2]


def _tail_zeroed(ws: Workspace) -> bytes:
    data = ws.newest.read_bytes()
    return data[:-64] + bytes(64)


class Payload:
    """An arbitrary pickled object: loading it could run code."""


def _with(ws: Workspace, **changes: Any) -> dict[str, Any]:
    content = ws.newest_content()
    content.update(changes)
    return content


def _load_row(bad: str, plant: Callable[[Workspace], Path], match: str) -> Row:
    def call(ws: Workspace) -> object:
        return hlt.load_checkpoint(ws.extra["path"])

    def prepare(ws: Workspace) -> None:
        ws.extra["path"] = plant(ws)

    return Row("load_checkpoint", bad, call, hlt.CheckpointError, match, prepare=prepare)


CORRUPT = r"is truncated or corrupt and cannot be read .*Delete it to resume from the previous"
FOREIGN = r"is not a helios checkpoint \(expected the keys"
UNSAFE = (
    r"is refused: it holds objects other than tensors and plain containers, which could run "
    r"code when loaded .*Only load files you trust"
)
NEXT = "epoch_0_iter_7.pth"  # newer than the workspace's newest: what fit resumes from


def _fit_row(
    bad: str, plant: Callable[[Workspace], Path], match: str, *, testing: bool = False
) -> Row:
    run = run_test if testing else fit
    return Row(
        "Trainer.test" if testing else "Trainer.fit",
        f"newest checkpoint {bad}",
        lambda ws: run(ws),
        hlt.CheckpointError,
        match,
        prepare=plant,
    )


CHECKPOINT_ROWS = [
    Row(
        "load_checkpoint",
        "a missing file, as str",
        lambda ws: hlt.load_checkpoint(str(ws.folder / "epoch_9_iter_99.pth")),
        hlt.CheckpointError,
        r"checkpoint \S+epoch_9_iter_99.pth does not exist",
    ),
    _load_row("truncated to half", lambda ws: ws.plant(NEXT, _truncated(ws)), CORRUPT),
    _load_row("empty (0 bytes)", lambda ws: ws.plant(NEXT, b""), CORRUPT),
    _load_row("garbage", lambda ws: ws.plant(NEXT, b"not a checkpoint at all" * 9), CORRUPT),
    _load_row("last 64 bytes zeroed", lambda ws: ws.plant(NEXT, _tail_zeroed(ws)), CORRUPT),
    _load_row(
        "a foreign torch file (a dict of weights)",
        lambda ws: ws.plant_saved(NEXT, {"weights": torch.ones(3)}),
        FOREIGN,
    ),
    _load_row(
        "a foreign torch file (a tensor)", lambda ws: ws.plant_saved(NEXT, torch.ones(3)), FOREIGN
    ),
    _load_row(
        "a module's state dict",
        lambda ws: ws.plant_saved(NEXT, torch.nn.Linear(2, 2).state_dict()),
        FOREIGN,
    ),
    _load_row(
        "unsafe: a pickled object",
        lambda ws: ws.plant_saved(NEXT, {"version": 1, "payload": Payload()}),
        UNSAFE,
    ),
    _load_row(
        "unsafe: a helios checkpoint carrying an object",
        lambda ws: ws.plant_saved(NEXT, _with(ws, model={"net": Payload()})),
        UNSAFE,
    ),
    _load_row(
        "format version 99",
        lambda ws: ws.plant_saved(NEXT, _with(ws, version=99)),
        r"has format version 99; this helios reads version 1",
    ),
    _load_row(
        "a negative iteration",
        lambda ws: ws.plant_saved(
            NEXT,
            _with(
                ws,
                training_state={**ws.newest_content()["training_state"], "global_iteration": -1},
            ),
        ),
        r"has a bad training state: training state field global_iteration must be an int >= 0",
    ),
    _load_row(
        "a training state that is a list",
        lambda ws: ws.plant_saved(NEXT, _with(ws, training_state=[1, 2])),
        r"has a bad training state: a training state must be a dict, got list",
    ),
    _fit_row("truncated", lambda ws: ws.plant(NEXT, _truncated(ws)), CORRUPT),
    _fit_row("unsafe", lambda ws: ws.plant_saved(NEXT, {"version": 1, "x": Payload()}), UNSAFE),
    _fit_row("foreign", lambda ws: ws.plant_saved(NEXT, {"weights": torch.ones(3)}), FOREIGN),
    _fit_row(
        "without RNG states",
        lambda ws: ws.plant_saved(NEXT, _with(ws, rng=[])),
        r"has no random-generator states",
    ),
    _fit_row("truncated", lambda ws: ws.plant(NEXT, _truncated(ws)), CORRUPT, testing=True),
    Row(
        "Trainer.fit",
        "a checkpoint of another model",
        lambda ws: fit(ws, model=WiderModel(NAME)),
        hlt.CheckpointError,
        r"checkpoint \S+epoch_0_iter_6.pth does not fit model 'net': .*Was it written by another "
        r"model\? Use another save_name or chkpt_root to start over",
    ),
    Row(
        "Trainer.test",
        "a checkpoint of another model",
        lambda ws: run_test(ws, model=WiderModel(NAME)),
        hlt.CheckpointError,
        r"does not fit model 'net'",
    ),
]


@parametrize(CHECKPOINT_ROWS)
def test_bad_checkpoints_refused(row: Row, matrix_template: Path, tmp_path: Path) -> None:
    assert_refused(row, matrix_template, tmp_path)

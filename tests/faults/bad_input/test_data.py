"""The bad-input matrix: what `fit` / `test` are given, data modules and loaders, `Model`
and `TrainingState`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from torch.utils.data import IterableDataset

import helios.data as hld
import helios.model as hlm
from helios.core import TrainingState
from tests.faults.bad_input.parts import (
    NAME,
    BadData,
    Row,
    fit,
    run_test,
    trainer,
    wrong,
)
from tests.faults.bad_input.runner import assert_refused, parametrize
from tests.trainer.helpers import ClassifierData, ClassifierModel


class Stream(IterableDataset[int]):
    def __iter__(self) -> Iterator[int]:
        return iter(range(3))


def _data_row(how: str, error: type[BaseException], match: str, *, testing: bool = False) -> Row:
    run = run_test if testing else fit
    return Row(
        "Trainer.test" if testing else "Trainer.fit",
        f"data module: {how}",
        lambda ws: run(ws, data=BadData(ws, how), model=ClassifierModel("fresh")),
        error,
        match,
    )


DATA_ROWS = [
    Row(
        "Trainer.fit",
        "model is not a Model",
        lambda ws: trainer(ws).fit(wrong(object()), ClassifierData()),
        TypeError,
        r"model must be a helios.model.Model, got object",
    ),
    Row(
        "Trainer.fit",
        "datamodule is not a DataModule",
        lambda ws: trainer(ws).fit(ClassifierModel(NAME), wrong([1, 2])),
        TypeError,
        r"datamodule must be a helios.data.DataModule, got list",
    ),
    Row(
        "Trainer.test",
        "model is a string",
        lambda ws: trainer(ws).test(wrong(NAME), ClassifierData()),
        TypeError,
        r"model must be a helios.model.Model, got str",
    ),
    _data_row(
        "no training data",
        ValueError,
        r"the data module returned no training data: train_dataloader\(\) gave None",
    ),
    _data_row(
        "a list, not a loader",
        TypeError,
        r"train_dataloader\(\) must return a torch DataLoader or None",
    ),
    _data_row(
        "no validation data",
        ValueError,
        r"valid_frequency is set but valid_dataloader\(\) returned None; return a validation "
        r"loader or drop valid_frequency",
    ),
    _data_row(
        "empty",
        ValueError,
        r"yielded no batches in a whole epoch .*Check the dataset size, batch_size and drop_last",
    ),
    _data_row(
        "no test data",
        ValueError,
        r"the data module returned no test data",
        testing=True,
    ),
    Row(
        "DataModule.create_dataloader",
        "an iterable dataset",
        lambda ws: hld.DataModule.create_dataloader(wrong(Stream())),
        TypeError,
        r"create_dataloader needs a map-style dataset with a length",
    ),
    Row(
        "ResumableSampler.shard",
        "rank 2 of 2",
        lambda ws: hld.ResumableSampler(10).shard(2, 2),
        ValueError,
        r"rank must be in \[0, 2\), got 2",
    ),
    Row(
        "ResumableSampler.set_start",
        "start=-1",
        lambda ws: hld.ResumableSampler(10).set_start(-1),
        ValueError,
        r"start must be >= 0, got -1",
    ),
    Row(
        "Model()",
        "save_name=''",
        lambda ws: hlm.Model(""),
        ValueError,
        r"save_name must be a non-empty string",
    ),
    Row(
        "Model()",
        "save_name=3",
        lambda ws: hlm.Model(wrong(3)),
        ValueError,
        r"save_name must be a non-empty string, got 3",
    ),
    Row(
        "Model.save_name",
        "set to ''",
        lambda ws: setattr(hlm.Model("x"), "save_name", ""),
        ValueError,
        r"save_name must be a non-empty string",
    ),
    Row(
        "Model.trainer",
        "read before fit",
        lambda ws: hlm.Model("x").trainer,
        RuntimeError,
        r"model 'x' has no trainer yet; it gets one when passed to Trainer.fit or Trainer.test",
    ),
    Row(
        "TrainingState",
        "assigned to",
        lambda ws: setattr(TrainingState(), "global_iteration", 3),
        AttributeError,
        r"can't set attribute",
    ),
]


@parametrize(DATA_ROWS)
def test_models_and_data_refused(row: Row, matrix_template: Path, tmp_path: Path) -> None:
    assert_refused(row, matrix_template, tmp_path)

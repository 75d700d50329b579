"""Helios 1.x's data loader description: `DataLoaderParams`, `DataModule._create_dataset`
and the default loader methods that build loaders from it."""

from __future__ import annotations

from typing import Any, cast

import attrs
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import TensorDataset, default_collate

import helios.data as hld
import helios.trainer as hlt
from helios.data import ResumableSampler
from tests.trainer.helpers import ClassifierModel, make_dataset


def _collate(samples: list[Any]) -> Any:
    return default_collate(samples)


params_strategy = st.builds(
    hld.DataLoaderParams,
    batch_size=st.integers(1, 64),
    shuffle=st.booleans(),
    num_workers=st.integers(0, 1),  # more than the CPUs makes torch warn
    pin_memory=st.booleans(),
    drop_last=st.booleans(),
    random_seed=st.integers(0, 2**32),
    debug_mode=st.booleans(),
    is_distributed=st.sampled_from([None, True, False]),
    collate_fn=st.sampled_from([None, _collate]),
)


class OneXData(hld.DataModule):
    """A data module written the 1.x way, setting the splits it is given."""

    def __init__(self, **splits: hld.DataLoaderParams | dict[str, Any]) -> None:
        super().__init__()
        self.splits = splits

    def setup(self) -> None:
        dataset = make_dataset(40)
        if "train" in self.splits:
            self._train_dataset = self._create_dataset(dataset, self.splits["train"])
        if "valid" in self.splits:
            self._valid_dataset = self._create_dataset(dataset, self.splits["valid"])
        if "test" in self.splits:
            self._test_dataset = self._create_dataset(dataset, self.splits["test"])


@given(params_strategy)
def test_each_parameter_reaches_the_loader(params: hld.DataLoaderParams) -> None:
    data = OneXData(train=params)
    data.setup()
    loader = data.train_dataloader()
    assert loader is not None
    sampler = loader.sampler
    assert isinstance(sampler, ResumableSampler)
    assert loader.batch_size == params.batch_size
    assert sampler.shuffle == params.shuffle
    assert loader.drop_last == params.drop_last == sampler.drop_last
    assert sampler.seed == params.random_seed
    assert loader.num_workers == (0 if params.debug_mode else params.num_workers)
    assert loader.pin_memory == params.pin_memory
    # is_distributed=False is 1.x's way to give every rank all of the data.
    assert sampler.split == (params.is_distributed is not False)
    if params.collate_fn is not None:
        assert loader.collate_fn is params.collate_fn


def test_the_dataset_keeps_a_copy_so_a_record_can_be_reused() -> None:
    params = hld.DataLoaderParams(batch_size=4, shuffle=True, drop_last=True)
    data = OneXData()
    train = data._create_dataset(make_dataset(8), params)
    params.shuffle = False
    params.drop_last = False
    valid = data._create_dataset(make_dataset(8), params)
    assert (train.params.shuffle, train.params.drop_last) == (True, True)
    assert (valid.params.shuffle, valid.params.drop_last) == (False, False)
    assert train.params is not params
    assert valid.params is not params


def test_splits_not_set_give_no_loader() -> None:
    data = OneXData(valid={"batch_size": 5})
    data.setup()
    assert data.train_dataloader() is None
    assert data.test_dataloader() is None
    valid = data.valid_dataloader()
    assert valid is not None
    assert valid.batch_size == 5


def test_a_mapping_of_settings_is_accepted_and_an_unknown_key_is_named() -> None:
    data = OneXData()
    spec = data._create_dataset(make_dataset(8), {"batch_size": 2, "is_distributed": False})
    assert spec.params == hld.DataLoaderParams(batch_size=2, is_distributed=False)
    with pytest.raises(ValueError, match=r"unknown data loader parameters \['sampler'\]"):
        data._create_dataset(make_dataset(8), {"batch_size": 2, "sampler": None})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, "batch_size must be a positive int, got 0"),
        ("num_workers", -1, "num_workers must be an int >= 0, got -1"),
        ("shuffle", "yes", "shuffle must be True or False, got 'yes'"),
        ("is_distributed", 0, "is_distributed must be True, False or None, got 0"),
        ("random_seed", 1.5, "random_seed must be an int >= 0, got 1.5"),
        ("collate_fn", 3, "collate_fn must be a function or None, got 3"),
    ],
)
def test_a_bad_value_is_refused_when_assigned_and_when_built(
    field: str, value: object, message: str
) -> None:
    params = hld.DataLoaderParams()
    with pytest.raises(ValueError, match=message):
        setattr(params, field, value)
    assert params == hld.DataLoaderParams()  # the refused value was not kept
    with pytest.raises(ValueError, match=message):
        hld.DataLoaderParams(**cast(dict[str, Any], {field: value}))


def test_a_split_not_made_by_create_dataset_is_named() -> None:
    data = OneXData()
    data._valid_dataset = make_dataset(8)  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"OneXData\._valid_dataset must be made with"):
        data.valid_dataloader()


def test_to_dict_and_from_dict_round_trip() -> None:
    params = hld.DataLoaderParams(batch_size=3, shuffle=True, collate_fn=_collate)
    assert hld.DataLoaderParams.from_dict(params.to_dict()) == params
    assert set(params.to_dict()) == {field.name for field in attrs.fields(hld.DataLoaderParams)}


class NoSuperInit(hld.DataModule):
    """As in Helios 1.x's Optuna tutorial: ``__init__`` does not call the base's."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def setup(self) -> None:
        params = hld.DataLoaderParams()
        params.batch_size = self.batch_size
        params.shuffle = True
        self._train_dataset = self._create_dataset(make_dataset(24), params)
        params.shuffle = False
        self._valid_dataset = self._create_dataset(make_dataset(16, seed=8), params)


def test_a_1x_data_module_trains_and_validates(tmp_path: Any) -> None:
    model = ClassifierModel("onex")
    trainer = hlt.Trainer(
        total_steps=2, valid_frequency=1, chkpt_frequency=1, chkpt_root=tmp_path, use_cpu=True
    )
    assert trainer.fit(model, NoSuperInit(batch_size=8))
    assert trainer.state.global_iteration == 6  # 24 samples / 8, two epochs
    assert trainer.state.validation_cycles == 2
    assert model.total == 16  # the whole validation set, in batches of 8
    assert sorted(p.name for p in (tmp_path / "onex").iterdir()) == [
        "epoch_1_iter_3.pth",
        "epoch_2_iter_6.pth",
    ]


def test_the_batch_size_decides_the_batches() -> None:
    data = OneXData(train={"batch_size": 4, "drop_last": True})
    data.setup()
    loader = data.train_dataloader()
    assert loader is not None
    shapes = [inputs.shape for inputs, _ in loader]
    assert shapes == [torch.Size([4, 8])] * 10
    assert isinstance(loader.dataset, TensorDataset)

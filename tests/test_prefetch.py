"""Prefetching on the CPU: the lookahead, the loader view, the plug-in option, the trainer.

On the CPU nothing can overlap, so the CUDA side (side stream, events, ``record_stream``,
pinned copies) is tested in ``tests/gpu``. What runs here is everything else, for real:
`Prefetcher` draws one batch ahead on any device, so its bookkeeping (order, laziness,
epoch ends, errors) is exercised here through the public API, and so is a trainer fed a
`PrefetchLoader`.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

import helios.data as hld
import helios.plugins as hlp
import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ClassifierModel, make_dataset, weights

CPU_WARNING = "overlaps nothing"


def cpu_prefetcher(batches: Any, **options: Any) -> hld.Prefetcher[Any]:
    with pytest.warns(hld.PrefetchWarning, match=CPU_WARNING):
        return hld.Prefetcher(batches, "cpu", **options)


class Journal:
    """A source of batches that writes down when it is iterated and drawn from."""

    def __init__(self, size: int, *, fail_at: int | None = None) -> None:
        self.size = size
        self.fail_at = fail_at
        self.log: list[str] = []

    def __iter__(self) -> Iterator[int]:
        self.log.append("iter")
        return self._draw()

    def _draw(self) -> Iterator[int]:
        for index in range(self.size):
            if index == self.fail_at:
                raise ValueError(f"batch {index} is broken")
            self.log.append(f"draw {index}")
            yield index

    def __len__(self) -> int:
        return self.size


def expected_log(size: int) -> list[str]:
    """Draw *n + 1* (and move it) before *n* is handed out; never anything twice."""
    log = ["iter"]
    if size:
        log += ["draw 0", "move 0"]
    for index in range(size):
        if index + 1 < size:
            log += [f"draw {index + 1}", f"move {index + 1}"]
        log.append(f"got {index}")
    return log


def recording_move(journal: Journal) -> Any:
    def move(batch: int) -> int:
        journal.log.append(f"move {batch}")
        return batch

    return move


# -- the lookahead ----------------------------------------------------------------------


@given(size=st.integers(0, 12), epochs=st.integers(1, 3))
def test_each_batch_is_drawn_once_in_order_and_one_ahead(size: int, epochs: int) -> None:
    journal = Journal(size)
    ahead = cpu_prefetcher(journal, move=recording_move(journal))
    for _ in range(epochs):
        for batch in ahead:
            journal.log.append(f"got {batch}")
    assert journal.log == expected_log(size) * epochs


def test_the_source_is_iterated_at_once_but_drawn_from_at_the_first_batch() -> None:
    journal = Journal(3)
    iterator = iter(cpu_prefetcher(journal, move=recording_move(journal)))
    assert journal.log == ["iter"]
    assert next(iterator) == 0
    assert journal.log == ["iter", "draw 0", "move 0", "draw 1", "move 1"]


@given(size=st.integers(1, 10), data=st.data())
def test_an_error_in_the_source_surfaces_when_its_batch_is_asked_for(
    size: int, data: st.DataObject
) -> None:
    fail_at = data.draw(st.integers(0, size - 1))
    journal = Journal(size, fail_at=fail_at)
    iterator = iter(cpu_prefetcher(journal))
    got = [next(iterator) for _ in range(fail_at)]
    assert got == list(range(fail_at))
    with pytest.raises(ValueError, match=f"batch {fail_at} is broken"):
        next(iterator)
    with pytest.raises(StopIteration):
        next(iterator)


def test_an_error_in_the_move_surfaces_when_its_batch_is_asked_for() -> None:
    def move(batch: int) -> int:
        if batch == 2:
            raise RuntimeError("cannot move batch 2")
        return batch * 10

    iterator = iter(cpu_prefetcher(range(5), move=move))
    assert [next(iterator), next(iterator)] == [0, 10]
    with pytest.raises(RuntimeError, match="cannot move batch 2"):
        next(iterator)


def test_after_the_last_batch_it_stays_exhausted() -> None:
    iterator = iter(cpu_prefetcher([1, 2]))
    assert list(iterator) == [1, 2]
    with pytest.raises(StopIteration):
        next(iterator)


def test_an_abandoned_pass_does_not_disturb_the_next_one() -> None:
    journal = Journal(4)
    ahead = cpu_prefetcher(journal)
    for batch in ahead:
        if batch == 1:
            break
    assert list(ahead) == [0, 1, 2, 3]


def test_batches_are_moved_with_the_default_mover() -> None:
    batches = [{"x": torch.full((2,), float(i)), "name": f"b{i}"} for i in range(3)]
    moved = list(cpu_prefetcher(batches))
    for original, out in zip(batches, moved, strict=True):
        assert out["name"] == original["name"]
        assert out["x"] is original["x"]  # already on the CPU: not copied


def test_length_is_the_sources() -> None:
    assert len(cpu_prefetcher(Journal(7))) == 7
    with pytest.raises(TypeError, match="has no length"):
        len(cpu_prefetcher(iter([1])))


def test_the_device_warning_is_given_once_per_warned_set() -> None:
    warned: set[str] = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            hld.Prefetcher([1], "cpu", warned=warned)
        hld.Prefetcher([1], torch.device("cpu"))
    messages = [str(w.message) for w in caught if issubclass(w.category, hld.PrefetchWarning)]
    assert len(messages) == 2
    assert "only copies to a CUDA device can run while the model computes" in messages[0]
    assert warned == {"device"}


def test_prefetching_to_cuda_without_cuda_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="cannot prefetch batches to cuda:1: CUDA is not"):
        hld.Prefetcher([1], "cuda:1")
    loader = DataLoader(make_dataset(8), batch_size=4)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        hld.PrefetchLoader(loader, "cuda")


# -- the loader view ---------------------------------------------------------------------


def test_a_prefetch_loader_is_a_view_of_its_loader() -> None:
    loader = hld.DataModule.create_dataloader(make_dataset(20), batch_size=6, shuffle=True)
    with pytest.warns(hld.PrefetchWarning, match=CPU_WARNING):
        view = hld.PrefetchLoader(loader, "cpu")
    assert isinstance(view, DataLoader)
    assert view.loader is loader
    assert view.device == torch.device("cpu")
    assert view.dataset is loader.dataset
    assert view.sampler is loader.sampler
    assert (view.batch_size, view.drop_last, view.num_workers) == (6, False, 0)
    assert len(view) == len(loader) == 4
    assert repr(view).startswith("PrefetchLoader(")
    sampler = loader.sampler
    assert isinstance(sampler, hld.ResumableSampler)
    sampler.set_epoch(3)
    expected = [labels for _, labels in loader]
    sampler.set_epoch(3)
    assert all(torch.equal(a, b) for (_, a), b in zip(view, expected, strict=True))
    sampler.set_start(12)  # what a resumed trainer does: the view iterates the loader
    assert [len(labels) for _, labels in view] == [6, 2]


def test_a_prefetch_loader_wraps_only_loaders() -> None:
    with pytest.raises(TypeError, match="wraps a torch DataLoader, got \\[1, 2\\]"):
        hld.PrefetchLoader([1, 2], "cpu")  # type: ignore[arg-type]


# -- the plug-in option and the trainer ---------------------------------------------------


def prefetch_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, hld.PrefetchWarning)]


class Recorder(ClassifierModel):
    def __init__(self, save_name: str = "classifier") -> None:
        super().__init__(save_name)
        self.record_batches = True
        self.validated: list[torch.Tensor] = []
        self.tested: list[torch.Tensor] = []

    def valid_step(self, batch: Any, step: int) -> None:
        self.validated.append(batch[1].clone())
        super().valid_step(batch, step)

    def test_step(self, batch: Any, step: int) -> None:
        self.tested.append(batch[1].clone())


def fit_and_test(plugin: hlp.DevicePlugin | None, data: hld.DataModule) -> Recorder:
    trainer = hlt.Trainer(
        train_unit="iteration", total_steps=21, valid_frequency=5, use_cpu=True, random_seed=3
    )
    if plugin is not None:
        plugin.configure_trainer(trainer)
    model = Recorder()
    trainer.fit(model, data)
    trainer.test(model, data)
    return model


def assert_same_run(expected: Recorder, actual: Recorder) -> None:
    for name in ("seen", "validated", "tested"):
        mine, theirs = getattr(actual, name), getattr(expected, name)
        assert len(mine) == len(theirs), name
        assert all(torch.equal(a, b) for a, b in zip(mine, theirs, strict=True)), name
    assert expected.losses == actual.losses
    for key, value in weights(expected).items():
        assert torch.equal(weights(actual)[key], value), key


def test_the_prefetch_option_on_the_cpu_changes_nothing_and_says_so_once() -> None:
    plain = fit_and_test(hlp.DevicePlugin(), ClassifierData(size=60))
    plugin = hlp.DevicePlugin(prefetch=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prefetched = fit_and_test(plugin, ClassifierData(size=60))
    messages = prefetch_warnings(caught)
    assert messages == [
        "DevicePlugin(prefetch=True) changes nothing on cpu: only copies to a CUDA device "
        "can run while the model computes"
    ]
    assert_same_run(plain, prefetched)
    assert len(prefetched.seen) == 21  # 21 steps over epochs of 8 batches: none lost


class PrefetchedData(ClassifierData):
    """Every loader wrapped in a `PrefetchLoader` by the data module itself."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.warned: set[str] = set()

    def _wrap(self, loader: DataLoader[Any]) -> DataLoader[Any]:
        return hld.PrefetchLoader(loader, "cpu", warned=self.warned)

    def train_dataloader(self) -> DataLoader[Any]:
        return self._wrap(super().train_dataloader())

    def valid_dataloader(self) -> DataLoader[Any]:
        return self._wrap(super().valid_dataloader())

    def test_dataloader(self) -> DataLoader[Any]:
        return self._wrap(super().test_dataloader())


@pytest.mark.parametrize("plain_loader", [False, True], ids=["resumable", "plain"])
def test_a_trainer_fed_prefetch_loaders_sees_the_same_batches(plain_loader: bool) -> None:
    expected = fit_and_test(None, ClassifierData(size=60, plain=plain_loader))
    with pytest.warns(hld.PrefetchWarning, match=CPU_WARNING) as caught:
        actual = fit_and_test(None, PrefetchedData(size=60, plain=plain_loader))
    assert len(prefetch_warnings(caught.list)) == 1
    assert_same_run(expected, actual)


@pytest.mark.parametrize("plain_loader", [False, True], ids=["resumable", "plain"])
def test_resuming_with_prefetch_loaders_is_exact(tmp_path: Path, plain_loader: bool) -> None:
    def run(root: Path, steps: int, data: hld.DataModule) -> dict[str, torch.Tensor]:
        model = ClassifierModel("m")  # with dropout: the random streams must line up
        trainer = hlt.Trainer(
            train_unit="iteration",
            total_steps=steps,
            chkpt_frequency=5,
            chkpt_root=root,
            use_cpu=True,
            random_seed=11,
        )
        trainer.fit(model, data)
        return weights(model)

    straight = run(tmp_path / "a", 23, ClassifierData(size=60, plain=plain_loader))
    with pytest.warns(hld.PrefetchWarning, match=CPU_WARNING):
        run(tmp_path / "b", 10, PrefetchedData(size=60, plain=plain_loader))  # mid-epoch
    with pytest.warns(hld.PrefetchWarning, match=CPU_WARNING):
        resumed = run(tmp_path / "b", 23, PrefetchedData(size=60, plain=plain_loader))
    for key, value in straight.items():
        assert torch.equal(resumed[key], value), key


def test_loader_wrappers_are_applied_in_order_and_can_be_replaced_or_removed() -> None:
    wrapped: list[tuple[str, int]] = []

    def tagging(tag: str) -> hld.LoaderWrapper:
        def wrap(loader: DataLoader[Any]) -> DataLoader[Any]:
            wrapped.append((tag, loader.batch_size or 0))
            return loader

        return wrap

    trainer = hlt.Trainer(train_unit="iteration", total_steps=2, use_cpu=True)
    trainer.set_loader_wrapper("a", tagging("a"))
    trainer.set_loader_wrapper("b", tagging("b"))
    trainer.set_loader_wrapper("a", tagging("a2"))  # replaces a, keeps its place
    trainer.fit(ClassifierModel(), ClassifierData())  # train (8) and validation (16) loaders
    assert wrapped == [("a2", 8), ("b", 8), ("a2", 16), ("b", 16)]
    wrapped.clear()
    trainer.set_loader_wrapper("a", None)
    trainer.set_loader_wrapper("missing", None)
    trainer.test(ClassifierModel(), ClassifierData())
    assert wrapped == [("b", 16)]


def test_the_plugin_wraps_loaders_only_when_asked_and_only_for_cuda() -> None:
    loader = DataLoader(TensorDataset(torch.zeros(4)), batch_size=2)
    assert hlp.DevicePlugin("cpu").wrap_loader(loader) is loader
    plugin = hlp.DevicePlugin("meta", prefetch=True)
    with pytest.warns(hld.PrefetchWarning, match="changes nothing on meta"):
        assert plugin.wrap_loader(loader) is loader
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plugin.wrap_loader(loader) is loader  # said once


def test_the_prefetch_option_is_checked_and_survives_pickling() -> None:
    with pytest.raises(TypeError, match="prefetch must be True or False, got 'yes'"):
        hlp.DevicePlugin(prefetch="yes")  # type: ignore[arg-type]
    plugin = pickle.loads(pickle.dumps(hlp.DevicePlugin(prefetch=True)))
    assert plugin.prefetch is True

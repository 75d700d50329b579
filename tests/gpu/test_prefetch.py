"""Prefetching on a GPU: copies on a side stream from pinned memory give the right values.

The speed (the copy hiding behind compute) is measured by ``benchmarks/gpu.py``; these
tests check what must hold whatever the timing: every batch arrives whole, in order,
usable at once on the stream the consumer computes on, and its memory is not reused
while queued kernels still read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import helios.core as hlc
import helios.data as hld

CUDA = torch.device("cuda", 0)
BIG = 8_000_000  # 32 MB of float32: a copy that takes a while


class Ready(Dataset[dict[str, Any]]):
    """Whole batches, made up front (a loader with ``batch_size=None`` hands them out)."""

    def __init__(self, count: int, numel: int, *, pin: bool) -> None:
        generator = torch.Generator().manual_seed(count + numel)
        self.batches = [
            {
                "x": torch.randn(numel, generator=generator),
                "parts": [torch.arange(6).view(2, 3) + i, f"batch-{i}"],
                "index": torch.tensor(i),
            }
            for i in range(count)
        ]
        if pin:
            self.batches = [
                hlc.tree_map(lambda leaf: leaf.pin_memory() if torch.is_tensor(leaf) else leaf, b)
                for b in self.batches
            ]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.batches[index]


def loader_of(count: int, numel: int = 1000, *, pin: bool = True) -> DataLoader[dict[str, Any]]:
    return DataLoader(Ready(count, numel, pin=pin), batch_size=None)


def reference(loader: DataLoader[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same batches, copied to the GPU the slow way: blocking, on the compute stream."""
    return [hlc.to_device(CUDA, non_blocking=False)(batch) for batch in loader]


def assert_same_batch(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert actual["x"].device == CUDA
    assert torch.equal(actual["x"], expected["x"])
    assert torch.equal(actual["parts"][0], expected["parts"][0])
    assert actual["parts"][1] == expected["parts"][1]
    assert int(actual["index"]) == int(expected["index"])


@pytest.mark.parametrize("device", ["cuda", "cuda:0", CUDA])
def test_prefetched_batches_equal_blocking_copies_in_order(device: str | torch.device) -> None:
    loader = loader_of(9)
    expected = reference(loader)
    view = hld.PrefetchLoader(loader, device)
    assert view.device == torch.device(device)
    for _ in range(2):  # two epochs: a fresh pass each time
        got = list(view)
        assert len(got) == len(expected)
        for actual, wanted in zip(got, expected, strict=True):
            assert_same_batch(actual, wanted)


def test_a_batch_is_usable_at_once_on_the_stream_that_asks_for_it() -> None:
    loader = loader_of(6, BIG)
    sums = [batch["x"].double().sum() for batch in loader]  # on the CPU, beforehand
    mine = torch.cuda.Stream(CUDA)  # type: ignore[no-untyped-call]
    results: list[torch.Tensor] = []
    with torch.cuda.stream(mine):  # the consumer computes on a stream of its own
        for batch in hld.Prefetcher(loader, CUDA):
            results.append(batch["x"].double().sum())  # no synchronisation in between
    torch.cuda.synchronize()
    torch.testing.assert_close(torch.stack(results).cpu(), torch.stack(sums))


def test_the_memory_of_a_batch_is_kept_while_queued_kernels_read_it() -> None:
    loader = loader_of(8, BIG)
    expected = [batch["x"].double().sum() for batch in loader]
    weight = torch.randn(2048, 2048, device=CUDA) / 64
    busy = torch.randn(2048, 2048, device=CUDA)
    results: list[torch.Tensor] = []
    for batch in hld.Prefetcher(loader, CUDA):
        # Keep the compute stream busy, so that the read below runs long after this loop
        # has dropped the batch and the next copies have been queued.
        for _ in range(40):
            busy = torch.tanh(busy @ weight)
        results.append(batch["x"].double().sum())
        del batch
    torch.cuda.synchronize()
    torch.testing.assert_close(torch.stack(results).cpu(), torch.stack(expected))


def test_batches_already_on_the_gpu_are_read_after_the_work_that_writes_them() -> None:
    weight = torch.randn(2048, 2048, device=CUDA) / 64

    def produced_on_the_gpu() -> Iterator[torch.Tensor]:
        for i in range(6):
            busy = torch.randn(2048, 2048, device=CUDA)
            for _ in range(20):
                busy = torch.tanh(busy @ weight)
            # Written at the end of a long queue on the compute stream (into memory that
            # held the previous batch, which a read too early would see).
            yield busy[:8, :8].mul(0).add_(float(i))

    # The move runs on the side stream: it must wait for the writes above.
    prefetched = hld.Prefetcher(produced_on_the_gpu(), CUDA, move=twice)
    values = [float(x.double().mean()) for x in prefetched]
    assert values == [2.0 * i for i in range(6)]


def twice(batch: torch.Tensor) -> torch.Tensor:
    return batch * 2


def test_pageable_batches_are_prefetched_with_a_warning_once() -> None:
    loader = loader_of(4, pin=False)
    expected = reference(loader)
    warned: set[str] = set()
    views = [hld.PrefetchLoader(loader, CUDA, warned=warned) for _ in range(2)]
    with pytest.warns(hld.PrefetchWarning, match="pageable host memory") as caught:
        passes = [list(view) for view in views for _ in range(2)]
    assert sum(issubclass(w.category, hld.PrefetchWarning) for w in caught) == 1
    for got in passes:
        for actual, wanted in zip(got, expected, strict=True):
            assert_same_batch(actual, wanted)


def test_leaves_a_custom_move_keeps_on_the_host_stay_there() -> None:
    move = hlc.to_device(CUDA)

    def keep_index(batch: dict[str, Any]) -> dict[str, Any]:
        return {key: value if key == "index" else move(value) for key, value in batch.items()}

    for i, batch in enumerate(hld.Prefetcher(loader_of(5), CUDA, move=keep_index)):
        assert batch["index"].device == torch.device("cpu")
        assert batch["index"].is_pinned()
        assert int(batch["index"]) == i
        assert batch["x"].device == CUDA

"""The device mover on a GPU: every batch kind the tree-map knows, compared back on the CPU."""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import given, settings

import helios.core as hlc
import helios.plugins as hlp
from tests import strategies
from tests.helpers import assert_tree_equal, assert_unchanged, reference_leaves, snapshot

CUDA = torch.device("cuda", 0)
to_cpu = hlc.to_device("cpu")


def pinned(batch: Any) -> Any:
    return hlc.tree_map(lambda leaf: leaf.pin_memory() if torch.is_tensor(leaf) else leaf, batch)


def assert_moved_and_equal(moved: Any, original: Any) -> None:
    """Every tensor of ``moved`` is on the GPU; brought back, the batch equals ``original``."""
    tensors = [leaf for leaf in reference_leaves(moved) if torch.is_tensor(leaf)]
    expected = [leaf for leaf in reference_leaves(original) if torch.is_tensor(leaf)]
    assert len(tensors) == len(expected)
    assert all(tensor.device == CUDA for tensor in tensors)
    assert_tree_equal(to_cpu(moved), original)


@settings(max_examples=60)
@given(batch=strategies.batches())
def test_cuda_plugin_moves_every_batch_kind(batch: Any) -> None:
    plugin = hlp.CUDAPlugin()
    before = snapshot(batch)
    state = hlp.TrainingState()
    for moved in (
        plugin.process_training_batch(batch, state),
        plugin.process_validation_batch(batch, 0),
        plugin.process_testing_batch(batch, 0),
    ):
        assert_moved_and_equal(moved, batch)
    assert_unchanged(batch, before)


@settings(max_examples=60)
@given(batch=strategies.batches())
def test_to_device_cuda_moves_every_batch_kind_from_pinned_and_pageable_memory(
    batch: Any,
) -> None:
    before = snapshot(batch)
    for target in ("cuda", "cuda:0", CUDA):
        assert_moved_and_equal(hlc.to_device(target)(batch), batch)
    assert_moved_and_equal(hlc.to_device(CUDA, non_blocking=False)(batch), batch)
    host = pinned(batch)
    # Pinned tensors go with non_blocking=True; the copy back is ordered after them.
    assert_moved_and_equal(hlc.to_device(CUDA)(host), batch)
    assert_moved_and_equal(hlc.to_device(CUDA, non_blocking=True)(host), batch)
    assert_unchanged(batch, before)


def test_a_tensor_already_on_the_gpu_is_not_copied() -> None:
    on_gpu = torch.arange(4.0, device=CUDA)
    batch = {"x": on_gpu, "y": [torch.ones(2)]}
    moved = hlp.CUDAPlugin().process_training_batch(batch, hlp.TrainingState())
    assert moved["x"] is on_gpu
    assert hlc.to_device("cuda")(batch)["x"] is on_gpu


def test_awkward_tensors_keep_their_values_dtypes_and_shapes() -> None:
    base = torch.arange(24.0).view(4, 6)
    batch = {
        "view": base[1:3, ::2],  # a strided view of a bigger tensor
        "transposed": base.t(),
        "empty": torch.zeros(0, 3),
        "half": torch.linspace(-1, 1, 5, dtype=torch.float16),
        "bfloat": torch.linspace(-1, 1, 5, dtype=torch.bfloat16),
        "complex": torch.tensor([1 + 2j, -3j]),
        "bool": torch.tensor([True, False]),
        "int8": torch.tensor([-128, 127], dtype=torch.int8),
        "scalar": torch.tensor(3.5),
    }
    for host in (batch, pinned(batch)):
        moved = hlc.to_device(CUDA)(host)
        for key, value in batch.items():
            out = moved[key]
            assert out.device == CUDA, key
            assert (out.dtype, out.shape) == (value.dtype, value.shape), key
            assert torch.equal(out.cpu(), value), key


def test_large_pinned_batches_arrive_whole() -> None:
    # Big enough that an asynchronous copy is still running when the next one is issued.
    generator = torch.Generator().manual_seed(0)
    hosts = [torch.randn(4_000_000, generator=generator).pin_memory() for _ in range(6)]
    moved = [hlc.to_device(CUDA)({"x": host})["x"] for host in hosts]
    sums = torch.stack([tensor.double().sum() for tensor in moved]).cpu()
    expected = torch.stack([host.double().sum() for host in hosts])
    torch.testing.assert_close(sums, expected)
    assert all(torch.equal(tensor.cpu(), host) for tensor, host in zip(moved, hosts, strict=True))

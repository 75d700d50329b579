"""Batches that arrive before they are needed.

While the model computes on batch *n*, batch *n + 1* is already being copied to the GPU on
a CUDA stream of its own. Two things make that safe:

* **Order.** The copy of a batch is enqueued on the side stream, followed by an event; the
  compute stream waits for that event before the batch is handed out, so no kernel reads
  a tensor whose copy has not finished. The side stream in turn waits for the work queued
  on the compute stream before each copy starts, in case the batch holds tensors that
  work is still writing.
* **Lifetime.** The copied tensors are allocated on the side stream but used, and freed,
  on the compute stream. ``Tensor.record_stream`` tells PyTorch's caching allocator so;
  without it, the memory of batch *n* could be handed to the copy of batch *n + 2* while
  kernels still read it. Tensors a batch already holds on the GPU are marked as used by
  the side stream in the same way. (Pinned source tensors need nothing: PyTorch's
  pinned-memory allocator keeps a block until the copies that read it are done.)

The copy overlaps with compute only from pinned (page-locked) host memory to a CUDA
device. Elsewhere the batches are still drawn one ahead and moved, but nothing overlaps,
and a `PrefetchWarning` says why, once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Generic, Protocol, TypeVar, cast

import torch
from torch.utils.data import DataLoader

from helios.core import to_device, tree_leaves

__all__ = ["LoaderWrapper", "PrefetchLoader", "PrefetchWarning", "Prefetcher"]

B = TypeVar("B")
P = TypeVar("P")
T = TypeVar("T")


class PrefetchWarning(UserWarning):
    """Prefetching was asked for where the copy cannot overlap with compute."""


class LoaderWrapper(Protocol):
    """A function that returns a loader yielding the batches of the loader it is given.

    The trainer applies the wrappers set with `helios.trainer.Trainer.set_loader_wrapper`
    to every loader the data module returns; `PrefetchLoader` is what a device plug-in
    with ``prefetch=True`` wraps them in.
    """

    def __call__(self, loader: DataLoader[T], /) -> DataLoader[T]: ...


def notify_once(warned: set[str], key: str, message: str) -> None:
    """Issue ``message`` as a `PrefetchWarning` unless ``key`` is in ``warned`` (then add it)."""
    if key in warned:
        return
    warned.add(key)
    warnings.warn(message, PrefetchWarning, stacklevel=3)


def _lookahead(
    source: Iterator[B], start: Callable[[B], P], finish: Callable[[P], B]
) -> Iterator[B]:
    """Yield ``finish(start(x))`` for each ``x`` of ``source``, keeping one ``start`` ahead.

    When item *n* is handed out, ``start`` has already been called on item *n + 1*, and
    ``finish`` on item *n* was called before that. Nothing is drawn from ``source`` before
    the first item is asked for. An exception raised while drawing or starting item
    *n + 1* is raised when item *n + 1* is asked for, not while item *n* is handed out,
    so the consumer sees it at the same point as without the lookahead.
    """
    try:
        pending = start(next(source))
    except StopIteration:
        return
    while True:
        ready = finish(pending)
        failure: Exception | None = None
        try:
            pending = start(next(source))
        except StopIteration:
            yield ready
            return
        except Exception as error:
            failure = error
        yield ready
        if failure is not None:
            raise failure


class _SideStream:
    """Copies batches to one CUDA device on a stream of their own."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stream = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]

    def start(self, batch: B, move: Callable[[B], B]) -> tuple[B, torch.cuda.Event]:
        compute = torch.cuda.current_stream(self.device)
        # The batch may hold tensors that queued work is still writing (a loader that
        # yields CUDA tensors): what the side stream does next waits for it. Such a tensor
        # may also be freed while the side stream still reads it, hence record_stream.
        self.stream.wait_stream(compute)
        self._record(batch, self.stream)
        with torch.cuda.stream(self.stream):
            moved = move(batch)
        return moved, self.stream.record_event()

    def finish(self, started: tuple[B, torch.cuda.Event]) -> B:
        moved, copied = started
        compute = torch.cuda.current_stream(self.device)
        compute.wait_event(copied)
        # Allocated on the side stream, used and freed on the compute stream: the
        # allocator must not reuse the memory before the compute stream is done with it.
        self._record(moved, compute)
        return moved

    def _record(self, batch: object, stream: torch.cuda.Stream) -> None:
        """Mark the memory of ``batch``'s tensors on this device as used by ``stream``."""
        for leaf in tree_leaves(batch):
            if isinstance(leaf, torch.Tensor) and leaf.device == self.device:
                leaf.record_stream(stream)


def _pageable_copies(batch: object, moved: object, device: torch.device) -> bool:
    """Whether moving ``batch`` to ``moved`` copied a pageable host tensor to ``device``.

    Leaves are paired by position, which holds for the built-in mover; a mover that
    changes the batch's structure is not judged.
    """
    before, after = tree_leaves(batch), tree_leaves(moved)
    if len(before) != len(after):
        return False
    return any(
        isinstance(source, torch.Tensor)
        and isinstance(target, torch.Tensor)
        and source.is_cpu
        and target.device == device
        and not source.is_pinned()
        for source, target in zip(before, after, strict=True)
    )


def _resolve(device: torch.device | str) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"cannot prefetch batches to {device}: CUDA is not available here "
            "(torch.cuda.is_available() is False)"
        )
    return device


class Prefetcher(Generic[B]):
    """Iterates over ``batches`` with every batch moved to ``device``, one batch ahead.

    Each iteration draws from a fresh iterator of ``batches`` (a loader is iterated once
    per epoch). When batch *n* is handed out, batch *n + 1* has already been drawn and,
    for a CUDA ``device``, is being copied on a side stream: the copy runs while the
    model computes on batch *n*. The copy overlaps with compute only when the batch's
    tensors are in pinned memory (``DataLoader(..., pin_memory=True)``); for pageable
    memory, and for devices other than CUDA, the batches are still drawn one ahead and
    moved, but nothing overlaps, and a `PrefetchWarning` says why once.

    Draws are one batch early: a dataset that draws random numbers from the global
    generators in the main process (``num_workers=0``) sees them in another order than
    without prefetching. Worker processes (``num_workers > 0``) have generators of their
    own, and then nothing changes.

    Args:
        batches: What to iterate over, such as a `DataLoader`.
        device: Where the batches go.
        move: How a batch goes there; by default `helios.core.to_device` (which copies
            pinned tensors with ``non_blocking=True``). On a CUDA device it runs on the
            side stream.
        warned: The keys of the warnings already given; pass one set to several
            prefetchers to give each warning once among them.

    Raises:
        RuntimeError: if ``device`` is a CUDA device and CUDA is not available.

    Examples:
        >>> import torch, warnings, helios.data as hld
        >>> batches = [{"x": torch.ones(2) * i} for i in range(3)]
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     ahead = hld.Prefetcher(batches, "cpu")
        >>> caught[0].category.__name__
        'PrefetchWarning'
        >>> [batch["x"].sum().item() for batch in ahead]
        [0.0, 2.0, 4.0]
    """

    def __init__(
        self,
        batches: Iterable[B],
        device: torch.device | str,
        *,
        move: Callable[[B], B] | None = None,
        warned: set[str] | None = None,
    ) -> None:
        self._batches = batches
        self._device = _resolve(device)
        self._move: Callable[[B], B] = to_device(self._device) if move is None else move
        self._warned: set[str] = set() if warned is None else warned
        self._side: _SideStream | None = None
        self._checked_memory = False
        if self._device.type != "cuda":
            notify_once(
                self._warned,
                "device",
                f"prefetching to {self._device} overlaps nothing: only copies to a CUDA device "
                "can run while the model computes. Batches are still moved, one ahead.",
            )

    @property
    def device(self) -> torch.device:
        """Where the batches go."""
        return self._device

    def __iter__(self) -> Iterator[B]:
        # The source's iterator is made now, not at the first batch: making a DataLoader's
        # iterator draws from the global generator, and a resumed run restores the
        # generators' state right after the trainer has asked for the iterator.
        source = iter(self._batches)
        if self._device.type != "cuda":
            return _lookahead(source, self._move, _same)
        side = self._side_stream()
        return _lookahead(source, self._start_on(side), side.finish)

    def __len__(self) -> int:
        if not isinstance(self._batches, Sized):
            raise TypeError(f"{type(self._batches).__name__} has no length")
        return len(self._batches)

    def __repr__(self) -> str:
        return f"Prefetcher({self._batches!r}, {str(self._device)!r})"

    def _side_stream(self) -> _SideStream:
        if self._side is None:
            device = self._device
            # torch annotates the index as int, but "cuda" alone has none: the current GPU.
            if cast(int | None, device.index) is None:
                device = torch.device("cuda", torch.cuda.current_device())
            self._side = _SideStream(device)
        return self._side

    def _start_on(self, side: _SideStream) -> Callable[[B], tuple[B, torch.cuda.Event]]:
        move = self._move

        def start(batch: B) -> tuple[B, torch.cuda.Event]:
            started = side.start(batch, move)
            if not self._checked_memory:
                # A loader's batches are all pinned or all not: the first one tells.
                self._checked_memory = True
                if _pageable_copies(batch, started[0], side.device):
                    notify_once(
                        self._warned,
                        "pageable",
                        f"batches are copied to {side.device} from pageable host memory, so "
                        "the copy cannot overlap with compute (the host waits for it); "
                        "build the DataLoader with pin_memory=True",
                    )
            return started

        return start


def _same(batch: B) -> B:
    return batch


class PrefetchLoader(DataLoader[T]):
    """A view of ``loader`` whose batches are prefetched to ``device`` (see `Prefetcher`).

    It is a `DataLoader`, so it goes wherever a loader does (a data module may return
    one), and it shares everything with ``loader``: reading ``dataset``, ``sampler``,
    ``batch_size`` and the other settings reads ``loader``'s, and each iteration iterates
    ``loader``. Only the batches differ: they come moved to ``device``, one ahead.

    In a distributed run, rather than returning one from a data module, give the device
    plug-in ``prefetch=True``: the trainer then wraps each loader after giving it this
    rank's shard of the data (and the device is the rank's own).

    Args:
        loader: The loader to prefetch from.
        device: Where the batches go.
        move: How a batch goes there (by default `helios.core.to_device`).
        warned: The keys of the warnings already given (see `Prefetcher`).

    Raises:
        TypeError: if ``loader`` is not a `DataLoader`.
        RuntimeError: if ``device`` is a CUDA device and CUDA is not available.
    """

    # DataLoader.__init__ is not called: every setting is read from the wrapped loader.
    def __init__(
        self,
        loader: DataLoader[T],
        device: torch.device | str,
        *,
        move: Callable[[T], T] | None = None,
        warned: set[str] | None = None,
    ) -> None:
        if not isinstance(cast(object, loader), DataLoader):
            raise TypeError(f"PrefetchLoader wraps a torch DataLoader, got {loader!r}")
        self._loader = loader
        self._prefetcher = Prefetcher(loader, device, move=move, warned=warned)

    @property
    def loader(self) -> DataLoader[T]:
        """The wrapped loader."""
        return self._loader

    @property
    def device(self) -> torch.device:
        """Where the batches go."""
        return self._prefetcher.device

    # DataLoader declares its own iterator class; this one yields the same batches.
    def __iter__(self) -> Iterator[T]:  # type: ignore[override]
        return iter(self._prefetcher)

    def __len__(self) -> int:
        return len(self._loader)

    def __getattr__(self, name: str) -> object:
        # Only reached for what this object lacks: the loader's settings and state.
        loader = self.__dict__.get("_loader")
        if loader is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(loader, name)

    def __repr__(self) -> str:
        return f"PrefetchLoader({self._loader!r}, {str(self.device)!r})"

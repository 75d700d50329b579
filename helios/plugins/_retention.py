"""Checkpoint retention: keep the newest checkpoints and the best ones by a metric."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from helios.core import TrainingState
from helios.core.loop import checkpoint_name, parse_checkpoint_name
from helios.plugins._builtin import PLUGIN_REGISTRY
from helios.plugins._plugin import Plugin
from helios.plugins._scalars import as_number
from helios.plugins._watch import RunWatcher

__all__ = ["Mode", "RetentionPlugin", "retained"]

#: Whether a smaller (``"min"``, a loss) or a larger (``"max"``, an accuracy) value is better.
Mode = Literal["min", "max"]


def retained(
    names: Sequence[str],
    scores: Mapping[str, float | None],
    *,
    keep_newest: int,
    keep_best: int = 0,
    mode: Mode = "max",
) -> frozenset[str]:
    """The checkpoints to keep: the newest ``keep_newest`` of ``names`` (oldest first),
    and the ``keep_best`` best of those with a score (ties go to the newer).

    A pure function: ``names`` and ``scores`` are left as they are. A missing, ``None``
    or NaN score never counts as best.

    Examples:
        >>> from helios.plugins import retained
        >>> names = ["epoch_1_iter_10.pth", "epoch_2_iter_20.pth", "epoch_3_iter_30.pth"]
        >>> scores = {"epoch_1_iter_10.pth": 0.9, "epoch_2_iter_20.pth": 0.7}
        >>> sorted(retained(names, scores, keep_newest=1, keep_best=1))
        ['epoch_1_iter_10.pth', 'epoch_3_iter_30.pth']
    """
    newest = names[max(len(names) - keep_newest, 0) :] if keep_newest > 0 else []
    sign = 1.0 if mode == "max" else -1.0
    scored = [
        (sign * score, index, name)
        for index, name in enumerate(names)
        if (score := scores.get(name)) is not None and not math.isnan(score)
    ]
    best = sorted(scored, reverse=True)[: max(keep_best, 0)]
    return frozenset(newest) | {name for _, _, name in best}


def _checkpoint_names(folder: Path) -> list[str]:
    """The checkpoint files in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [(parse_checkpoint_name(p.name), p.name) for p in folder.iterdir() if p.is_file()]
    return [name for parsed, name in sorted((p, n) for p, n in found if p is not None)]


@PLUGIN_REGISTRY.register
class RetentionPlugin(Plugin):
    """Deletes old checkpoints: keeps the newest ``keep_newest`` and the best ``keep_best``.

    After each checkpoint is written (and flushed to disk), and when a resumed run starts,
    rank 0 deletes the checkpoints of the run that `retained` does not keep. The best are judged by
    ``model.metrics[metric]`` as it was when each checkpoint was written (the last
    validation's value). Deleting is safe against a kill at any moment: it starts only
    once the new checkpoint is complete on disk, and the newest checkpoint, the one a run
    resumes from, is always kept. The scores travel in the checkpoints, under the
    plug-in's id, so a resumed run goes on judging the checkpoints it did not write, and
    ``Trainer.validate(..., checkpoint="best")`` can find the best one.

    Args:
        keep_newest: How many of the newest checkpoints to keep (at least 1).
        keep_best: How many of the best checkpoints to keep besides (needs ``metric``).
        metric: The key of ``model.metrics`` that makes a checkpoint better.
        mode: ``"max"`` when a larger value is better, ``"min"`` when a smaller one is.

    Raises:
        ValueError: naming the argument that is out of range.

    Examples:
        >>> import helios.plugins as hlp
        >>> plugin = hlp.RetentionPlugin(2, keep_best=1, metric="accuracy", mode="max")
        >>> plugin.plug_id, sorted(plugin.unique_overrides.claimed())
        ('retention', [])
    """

    plugin_id: ClassVar[str] = "retention"

    def __init__(
        self,
        keep_newest: int = 1,
        *,
        keep_best: int = 0,
        metric: str | None = None,
        mode: Mode = "max",
    ) -> None:
        super().__init__(type(self).plugin_id)
        if isinstance(keep_newest, bool) or not isinstance(keep_newest, int) or keep_newest < 1:
            raise ValueError(
                f"keep_newest must be an int of at least 1, got {keep_newest!r}: the newest "
                "checkpoint is the one a run resumes from"
            )
        if isinstance(keep_best, bool) or not isinstance(keep_best, int) or keep_best < 0:
            raise ValueError(f"keep_best must be an int of at least 0, got {keep_best!r}")
        if keep_best and not metric:
            raise ValueError(
                f"keep_best={keep_best} needs a metric: RetentionPlugin(..., metric='accuracy')"
            )
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.keep_newest = keep_newest
        self.keep_best = keep_best
        self.metric = metric
        self.mode: Mode = mode
        self._scores: dict[str, float | None] = {}

    def setup(self) -> None:
        self._scores = {}
        self.trainer.watch(self.plug_id, RunWatcher(on_checkpoint=self._saved))

    def _score_now(self) -> float | None:
        model = self.trainer.model
        if self.metric is None or model is None:
            return None
        return as_number(model.metrics.get(self.metric))

    def on_training_start(self) -> None:
        """Apply the policy to the checkpoints a resumed run finds (rank 0): a run killed
        between writing a checkpoint and deleting the old ones left them behind."""
        model = self.trainer.model
        folder = None if model is None else self.trainer.checkpoint_folder(model)
        if self.rank == 0 and folder is not None:
            self._delete_unkept(folder)

    def _saved(self, path: Path, state: TrainingState) -> None:
        """Record the new checkpoint's score, then delete what is no longer kept."""
        self._scores[path.name] = self._score_now()
        self._delete_unkept(path.parent)

    def _delete_unkept(self, folder: Path) -> None:
        names = _checkpoint_names(folder)
        keep = retained(
            names,
            self._scores,
            keep_newest=self.keep_newest,
            keep_best=self.keep_best,
            mode=self.mode,
        )
        # The newest is always kept (keep_newest >= 1): it is what a run resumes from,
        # and deleting starts only once it is complete on disk.
        for name in names:
            if name not in keep:
                (folder / name).unlink(missing_ok=True)
        self._scores = {name: score for name, score in self._scores.items() if name in keep}

    def best(self, saved: Mapping[str, Any] | None, names: Sequence[str]) -> str | None:
        """The best of ``names`` (checkpoint file names, oldest first) by the scores in
        ``saved`` (this plug-in's state from the newest checkpoint); ``None`` when none
        has a score for `metric`."""
        if saved is None or self.metric is None or saved.get("metric") != self.metric:
            return None
        scores = saved.get("scores", {})
        best = retained(names, scores, keep_newest=0, keep_best=1, mode=self.mode)
        return next(iter(best), None)

    def state_dict(self) -> dict[str, Any]:
        """The metric and the scores of the kept checkpoints, the one being written
        included (while a checkpoint is written, the trainer's state is the one it
        records)."""
        scores = dict(self._scores)
        with contextlib.suppress(RuntimeError):  # not in a run: nothing is being written
            scores[checkpoint_name(self.trainer.state)] = self._score_now()
        return {"metric": self.metric, "scores": scores}

    def load_state_dict(self, state_dict: Mapping[str, Any], /) -> None:
        """Take over the scores of a resumed run (if they were kept for `metric`)."""
        if state_dict.get("metric") == self.metric:
            self._scores = {str(k): as_number(v) for k, v in state_dict.get("scores", {}).items()}

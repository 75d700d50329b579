"""Checkpoint retention (`RetentionPlugin`, `retained`) and `Trainer.validate`, on real
checkpoints. The crash safety of deleting is tested with real kills in
``tests/faults/test_retention_kill.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import hypothesis.strategies as st
import pytest
from hypothesis import example, given

import helios.plugins as hlp
import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ClassifierModel

# -- the pure rule ---------------------------------------------------------------------

NAMES = [hlt.checkpoint_name(hlt.TrainingState(current_iteration=i)) for i in range(1, 13)]


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[str], dict[str, float | None], int, int, str]:
    names = NAMES[: draw(st.integers(0, len(NAMES)))]
    values = st.one_of(st.none(), st.floats(allow_nan=True), st.sampled_from([0.5, 1.0]))
    scores = {name: draw(values) for name in names if draw(st.booleans())}
    return (
        names,
        scores,
        draw(st.integers(0, 4)),
        draw(st.integers(0, 4)),
        draw(st.sampled_from(["min", "max"])),
    )


def _valued(scores: dict[str, float | None], name: str) -> float | None:
    value = scores.get(name)
    return None if value is None or value != value else value


@given(cases())
@example((NAMES[:3], {NAMES[0]: 0.5, NAMES[1]: 0.5}, 1, 1, "max"))
def test_retained_keeps_the_newest_and_the_best(
    case: tuple[list[str], dict[str, float | None], int, int, Any],
) -> None:
    names, scores, newest, best, mode = case
    before = (list(names), dict(scores))
    kept = hlp.retained(names, scores, keep_newest=newest, keep_best=best, mode=mode)
    assert (names, scores) == before  # the inputs are left alone
    assert kept <= set(names)
    assert set(names[len(names) - newest :] if newest else []) <= kept
    valued = [name for name in names if _valued(scores, name) is not None]
    by_best = [
        name for name in kept if name in valued and name not in names[len(names) - newest :]
    ]
    assert len(kept) <= min(len(names), newest + best)
    assert len(set(kept) & set(valued)) >= min(best, len(valued))  # the best are there
    sign = 1 if mode == "max" else -1
    for kept_name in by_best:  # anything kept for its score beats what was dropped
        for dropped in set(valued) - kept:
            kept_value, dropped_value = _valued(scores, kept_name), _valued(scores, dropped)
            assert kept_value is not None
            assert dropped_value is not None
            assert sign * kept_value >= sign * dropped_value
    # Keeping what was kept keeps it all: the rule is stable.
    again = hlp.retained(
        sorted(kept, key=names.index), scores, keep_newest=newest, keep_best=best, mode=mode
    )
    assert again == kept


def test_ties_go_to_the_newer_checkpoint() -> None:
    scores = {NAMES[0]: 0.5, NAMES[1]: 0.5, NAMES[2]: 0.1}
    assert hlp.retained(NAMES[:3], scores, keep_newest=0, keep_best=1) == {NAMES[1]}
    assert hlp.retained(NAMES[:3], scores, keep_newest=0, keep_best=1, mode="min") == {NAMES[2]}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"keep_newest": 0}, "keep_newest must be an int of at least 1"),
        ({"keep_newest": True}, "keep_newest must be an int of at least 1"),
        ({"keep_best": -1}, "keep_best must be an int of at least 0"),
        ({"keep_best": 2}, r"keep_best=2 needs a metric"),
        ({"metric": "loss", "mode": "lowest"}, "mode must be 'min' or 'max', got 'lowest'"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hlp.RetentionPlugin(**arguments)


def test_the_registry_creates_it() -> None:
    plugin = hlp.create_plugin("RetentionPlugin", 3, keep_best=1, metric="accuracy")
    assert isinstance(plugin, hlp.RetentionPlugin)
    assert (plugin.keep_newest, plugin.keep_best, plugin.metric) == (3, 1, "accuracy")


# -- real runs ---------------------------------------------------------------------------

#: The model's "accuracy" at validation cycles 1, 2, ... (one per checkpoint below).
SCORES = [0.5, 0.9, 0.2, 0.7, 0.1, 0.6, 0.3, 0.8]


class Scripted(ClassifierModel):
    """A classifier whose accuracy follows `SCORES`, so the best checkpoints are known."""

    def on_validation_end(self, validation_cycle: int) -> None:
        self.metrics["accuracy"] = SCORES[validation_cycle - 1]


def fit(root: Path, steps: int, *plugins: hlp.Plugin) -> hlt.Trainer:
    trainer = hlt.Trainer(
        train_unit="iteration",
        total_steps=steps,
        valid_frequency=2,
        chkpt_frequency=2,
        use_cpu=True,
        chkpt_root=root,
        random_seed=3,
    )
    for plugin in plugins:
        plugin.configure_trainer(trainer)
    trainer.fit(Scripted("scripted"), ClassifierData(size=64))
    return trainer


def on_disk(root: Path) -> list[int]:
    return [
        hlt.load_checkpoint(p)["training_state"].current_iteration
        for p in hlt.find_checkpoints(root / "scripted")
    ]


@pytest.mark.parametrize(("newest", "best", "mode"), [(1, 0, "max"), (2, 2, "max"), (1, 2, "min")])
def test_only_the_kept_checkpoints_remain(
    tmp_path: Path, newest: int, best: int, mode: Any
) -> None:
    fit(tmp_path, 16, hlp.RetentionPlugin(newest, keep_best=best, metric="accuracy", mode=mode))
    # Checkpoint k (iteration 2k) was written right after validation cycle k.
    ranked = sorted(range(8), key=lambda k: (SCORES[k] if mode == "max" else -SCORES[k], k))
    expected = set(range(8 - newest, 8)) | set(ranked[8 - best :] if best else [])
    assert on_disk(tmp_path) == [2 * (k + 1) for k in sorted(expected)]
    newest_file = hlt.find_checkpoints(tmp_path / "scripted")[-1]
    saved = hlt.load_checkpoint(newest_file)["plugins"]["retention"]
    assert saved["metric"] == "accuracy"
    # The newest records the score of every checkpoint there was when it was written.
    for path in hlt.find_checkpoints(tmp_path / "scripted"):
        cycle = hlt.load_checkpoint(path)["training_state"].validation_cycles
        assert saved["scores"][path.name] == SCORES[cycle - 1]


def test_a_resumed_run_goes_on_judging_the_checkpoints_it_did_not_write(tmp_path: Path) -> None:
    retention = hlp.RetentionPlugin(1, keep_best=1, metric="accuracy")
    fit(tmp_path, 6, retention)  # cycles 1-3: the best (0.9) is iteration 4
    assert on_disk(tmp_path) == [4, 6]
    fit(tmp_path, 16, hlp.RetentionPlugin(1, keep_best=1, metric="accuracy"))
    assert on_disk(tmp_path) == [4, 16]  # still the best of all eight


def test_validate_newest_best_and_a_path(tmp_path: Path) -> None:
    retention = hlp.RetentionPlugin(1, keep_best=1, metric="accuracy")
    trainer = fit(tmp_path, 16, retention)
    cycles: list[int] = []

    class Checked(ClassifierModel):
        def on_validation_start(self, validation_cycle: int) -> None:
            super().on_validation_start(validation_cycle)
            cycles.append(validation_cycle)

    choices: list[tuple[Literal["newest", "best"], int]] = [("newest", 16), ("best", 4)]
    for checkpoint, iteration in choices:
        model = Checked("scripted")
        assert trainer.validate(model, ClassifierData(size=64), checkpoint=checkpoint) is True
        assert trainer.state.current_iteration == iteration
        assert 0.0 <= model.metrics["accuracy"] <= 1.0
    path = tmp_path / "scripted" / "epoch_0_iter_4.pth"
    trainer.validate(Checked("scripted"), ClassifierData(size=64), checkpoint=path)
    assert trainer.state.current_iteration == 4
    assert cycles == [8, 2, 2]  # the validations the checkpoint's run had done


def test_validate_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    plain = hlt.Trainer(use_cpu=True, chkpt_root=tmp_path)
    model, data = ClassifierModel("nothing"), ClassifierData()
    with pytest.raises(ValueError, match="needs a registered RetentionPlugin with a metric"):
        plain.validate(model, data, checkpoint="best")
    with pytest.raises(ValueError, match=r"'newest', 'best' or a pathlib\.Path, got 'latest'"):
        plain.validate(model, data, checkpoint="latest")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plain.validate(model, data, checkpoint=tmp_path / "missing.pth")
    hlp.RetentionPlugin(metric="accuracy").configure_trainer(plain)
    with pytest.raises(ValueError, match="there is no checkpoint in"):
        plain.validate(model, data, checkpoint="best")
    fit(tmp_path, 4)  # checkpoints without scores
    with pytest.raises(ValueError, match="has a recorded value of 'accuracy'"):
        plain.validate(ClassifierModel("scripted"), data, checkpoint="best")

    class NoValidation(ClassifierData):
        def valid_dataloader(self) -> Any:
            return None

    with pytest.raises(ValueError, match=r"no validation data: valid_dataloader\(\) gave None"):
        plain.validate(ClassifierModel("scripted"), NoValidation())

"""The documentation's pictures are up to date with the code that makes them.

``scripts/make-doc-images`` (``scripts/doc_images.py``) runs the example study from a
fixed seed and records the hook order from a real trainer; this test does the same in a
temporary folder and compares with what is committed.

What is compared, and why not the pixels: the PNGs are compared by size (a plot added,
removed or laid out anew changes it) and by the data they were drawn from
(``docs/images/tune-plots.json``: every trial's state, parameters, value and per-epoch
accuracy, the order of the importances). Pixel-exact images would break with every
matplotlib or FreeType release while the plots still show the same thing; the data is what
a reader looks at, and it changes whenever the example's behaviour does. The console
sample is compared line by line with its timings masked, and the hook-order picture
exactly: both come from code alone. When this fails, run ``scripts/make-doc-images`` and
look at what changed before committing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("doc_images", ROOT / "scripts" / "doc_images.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


doc_images = _load()


def test_the_hook_order_picture_is_the_trainer_s() -> None:
    calls = doc_images.record_hook_order()
    page = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert doc_images.render_hook_order(calls) in page
    # The picture shows the order the trainer's dispatch gives: plug-ins before the
    # model, the claimant's batch hook before the model's step, stop asked twice.
    hooks = [f"{who}.{hook}" for who, hook in calls]
    assert hooks.index("mover.on_validation_end") < hooks.index("model.on_validation_end")
    assert hooks.index("model.on_validation_end") < hooks.index("watcher.on_metrics")
    assert hooks.index("mover.process_training_batch") < hooks.index("model.train_step")
    assert hooks.count("tuner.should_training_stop") == 2
    assert hooks[-1] == "watcher.on_end"


def test_png_size_reads_the_header(tmp_path: Path) -> None:
    committed = ROOT / "docs" / "images" / "tune-intermediate-values.png"
    width, height = doc_images.png_size(committed)
    assert 300 < width < 3000
    assert 200 < height < 3000
    (tmp_path / "not.png").write_bytes(b"GIF89a" + bytes(30))
    with pytest.raises(ValueError, match="not a PNG file"):
        doc_images.png_size(tmp_path / "not.png")


@pytest.mark.slow
def test_the_committed_pictures_are_up_to_date(tmp_path: Path) -> None:
    made = doc_images.make(tmp_path)
    assert doc_images.differences(made, tmp_path) == []
    # The data shows pruning: trials that stopped early, and ones that ran to the end.
    states = {trial["state"] for trial in made["data"]["trials"]}
    assert states == {"COMPLETE", "PRUNED"}

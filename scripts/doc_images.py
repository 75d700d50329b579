"""Make the pictures of the documentation from the code itself.

- The example study's plots (``docs/images/tune-*.png``) and a sample of its console
  output (in ``docs/optuna.md``): the study runs, as a user runs it, from a fixed seed;
  ``docs/images/tune-plots.json`` keeps the data the plots were drawn from.
- The hook order (in ``docs/plugins.md``): a real trainer fits a recording model with
  two recording plug-ins, and the calls it made are written out.

``tests/test_doc_images.py`` makes them again in a temporary folder and compares; run
this script when it says they are out of date::

    scripts/make-doc-images          # rewrites the files above
    scripts/make-doc-images --check  # only says whether they are up to date (status 1 if not)
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
IMAGES = DOCS / "images"
PLOT_DATA = IMAGES / "tune-plots.json"

#: The example study the pictures show: small enough to run in seconds, large enough for
#: the median pruner (5 trials to start with, 3 epochs of warm-up) to prune.
TUNE_FLAGS = ("--n-trials", "12", "--epochs", "8", "--seed", "0", "--threads", "1", "--plot")
TUNE_COMMAND = "python -m helios.examples.tune " + " ".join(TUNE_FLAGS)
#: Each picture's name in docs/images, by the name the example gives it.
PICTURES = {
    "optimization-history.png": "tune-optimization-history.png",
    "intermediate-values.png": "tune-intermediate-values.png",
    "param-importances.png": "tune-param-importances.png",
}


# -- the example study -----------------------------------------------------------------


def run_example(folder: Path) -> str:
    """Run the example study in ``folder`` (its default working folder, ``helios-tune``,
    goes there, so the output shows no temporary paths); its console output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("OPTUNA_STORAGE", None)
    done = subprocess.run(
        [sys.executable, "-m", "helios.examples.tune", *TUNE_FLAGS],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the example study failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file, read from its header."""
    header = path.read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def plot_data(folder: Path) -> dict[str, Any]:
    """What the plots of the study in ``folder/helios-tune`` show: every trial (state,
    parameters, value, the accuracy after each epoch), the importances, the images'
    sizes. Numbers are rounded where float arithmetic may differ in the last digits."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    workdir = folder / "helios-tune"
    storage = optuna.storages.RDBStorage(f"sqlite:///{workdir / 'helios-tune.db'}")
    try:
        study = optuna.load_study(study_name="helios-digits", storage=storage)
        trials = [
            {
                "number": trial.number,
                "state": trial.state.name,
                "params": {
                    k: round(v, 6) if isinstance(v, float) else v for k, v in trial.params.items()
                },
                "value": None if trial.value is None else round(trial.value, 4),
                "intermediate": {
                    str(k): round(v, 4) for k, v in sorted(trial.intermediate_values.items())
                },
            }
            for trial in study.get_trials()
        ]
        importances = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    finally:
        storage.engine.dispose()
    return {
        "command": TUNE_COMMAND,
        "trials": trials,
        "importance_order": list(importances),
        "images": {name: list(png_size(workdir / name)) for name in PICTURES},
    }


#: Numbers in the console output that are timings: they differ from run to run.
_TIMINGS = re.compile(r"\d+(\.\d+)? s\b|\d+\.\d+ s per epoch")


def comparable_console(text: str) -> str:
    """``text`` with its timings masked."""
    return _TIMINGS.sub("<t> s", text)


def console_block(output: str) -> str:
    """The console sample as the docs show it: the command, then its output."""
    return f"$ {TUNE_COMMAND}\n{output.rstrip()}\n"


# -- the hook order ----------------------------------------------------------------------


def _recorder(
    calls: list[tuple[str, str]], who: Callable[[Any], str], name: str, base: Any
) -> Callable[..., Any]:
    """``base`` (a hook), noting each call in ``calls``."""

    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((who(self), name))
        return base(self, *args, **kwargs)

    return hook


def record_hook_order() -> list[tuple[str, str]]:
    """Fit a recording model with two recording plug-ins (``mover`` claims the batches,
    ``tuner`` the stop question and gives a run watcher): one step, after which
    validation, logging and a checkpoint are all due. Returns ``(who, hook)`` in order."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    import helios.data as hld
    import helios.model as hlm
    import helios.plugins as hlp
    import helios.trainer as hlt
    from helios.model import MODEL_HOOKS
    from helios.plugins._plugin import HOOK_PARAMETERS

    calls: list[tuple[str, str]] = []

    def recording(cls: type, who: Callable[[Any], str], names: Sequence[str]) -> None:
        for name in names:
            setattr(cls, name, _recorder(calls, who, name, getattr(cls, name)))

    batch_hooks = [name for name in HOOK_PARAMETERS if name.startswith("process_")]
    lifecycle = [
        name
        for name in HOOK_PARAMETERS
        if name not in batch_hooks
        and name != "should_training_stop"
        and not name.startswith("configure")
    ]

    class Mover(hlp.Plugin):
        def __init__(self) -> None:
            super().__init__("mover")
            claims = self.unique_overrides
            claims.training_batch = claims.validation_batch = claims.testing_batch = True

    class Tuner(hlp.Plugin):
        def __init__(self) -> None:
            super().__init__("tuner")
            self.unique_overrides.should_training_stop = True

        def setup(self) -> None:
            def told(what: str) -> Callable[..., None]:
                return lambda *_: calls.append(("watcher", what))

            watcher = hlp.RunWatcher(
                on_log=told("on_log"),
                on_metrics=told("on_metrics"),
                on_checkpoint=told("on_checkpoint"),
                on_end=told("on_end"),
            )
            self.trainer.watch(self.plug_id, watcher)

    class Recorded(hlm.Model):
        def setup(self, fast_init: bool = False) -> None:
            self.net = torch.nn.Linear(2, 1)

    class Data(hld.DataModule):
        def setup(self) -> None:
            self.data = TensorDataset(torch.zeros(2, 2))

        def train_dataloader(self) -> DataLoader[Any]:
            return DataLoader(self.data, batch_size=1)

        def valid_dataloader(self) -> DataLoader[Any]:
            return DataLoader(self.data, batch_size=2)

    recording(Mover, lambda plugin: plugin.plug_id, [*lifecycle, *batch_hooks])
    recording(
        Tuner,
        lambda plugin: plugin.plug_id,
        [*lifecycle, "should_training_stop"],
    )
    model_hooks = sorted(
        n
        for n in MODEL_HOOKS
        if inspect.isfunction(getattr(hlm.Model, n)) and n != "wrap_distributed"
    )
    recording(Recorded, lambda _: "model", model_hooks)
    with tempfile.TemporaryDirectory() as folder:
        trainer = hlt.Trainer(
            train_unit="iteration",
            total_steps=1,
            valid_frequency=1,
            chkpt_frequency=1,
            print_frequency=1,
            use_cpu=True,
            chkpt_root=folder,
        )
        Mover().configure_trainer(trainer)
        Tuner().configure_trainer(trainer)
        trainer.fit(Recorded("recorded"), Data())
    return calls


#: Where a section of the picture starts: its first hook, and its title.
_SECTIONS = {
    "setup": "set-up (once per fit, test or validate)",
    "on_training_start": "training starts",
    "process_training_batch": "one training step (each batch)",
    "running_loss": "every print_frequency optimiser steps",
    "on_validation_start": "one validation cycle (every valid_frequency)",
    "state_dict": "a checkpoint (every chkpt_frequency)",
    "on_training_epoch_end": "training ends",
}
_NOTES = {
    "process_training_batch": "the batch train_step gets",
    "process_validation_batch": "the batch valid_step gets",
    "should_training_stop": "stop? (the claimant, then the model)",
    "on_metrics": "the tuner's RunWatcher: the metrics are in",
    "on_checkpoint": "on rank 0, once the file is on disk",
    "on_end": "also after a failure",
}


def _parameters(who: str, hook: str) -> str:
    import helios.model as hlm
    from helios.plugins._plugin import HOOK_PARAMETERS

    if who == "model":
        names = list(inspect.signature(getattr(hlm.Model, hook)).parameters)[1:]
    elif who == "watcher":
        names = list(_WATCHER_PARAMETERS[hook])
    else:
        names = list(HOOK_PARAMETERS[hook])
    return ", ".join(names)


#: What a `helios.plugins.RunWatcher`'s callbacks are given.
_WATCHER_PARAMETERS = {
    "on_log": ("state",),
    "on_metrics": ("validation_cycle",),
    "on_checkpoint": ("path", "state"),
    "on_end": (),
}


def render_hook_order(calls: Sequence[tuple[str, str]]) -> str:
    """The recorded calls as an indented text picture, in sections."""
    lines = [
        "fit(model, datamodule), with plug-ins mover (owns the batches) and tuner (owns stop"
        " and gives a RunWatcher)"
    ]
    seen: set[str] = set()
    width = max(len(f"{who}.{hook}({_parameters(who, hook)})") for who, hook in calls)
    previous = ""
    for who, hook in calls:
        if hook in _SECTIONS and hook not in seen:
            seen.add(hook)
            lines.append(f"  {_SECTIONS[hook]}")
        call = f"{who}.{hook}({_parameters(who, hook)})"
        note = None if hook == previous else _NOTES.get(hook)  # once for a run of calls
        if note and hook == "should_training_stop" and "on_validation_start" in seen:
            note = "stop? asked again, now that the cycle's metrics are in"
        previous = hook
        lines.append(f"    {call:<{width}}  <- {note}" if note else f"    {call}")
    return "\n".join(lines) + "\n"


# -- writing and checking ---------------------------------------------------------------


def replace_block(text: str, marker: str, language: str, body: str) -> str:
    """``text`` with the fenced block between ``<!-- marker:start -->`` and
    ``<!-- marker:end -->`` holding ``body``."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(f"the page needs one {start} and one {end}")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n```{language}\n{body}```\n{end}{tail}"


def make(folder: Path) -> dict[str, Any]:
    """Make everything in ``folder``: the pictures, their data, the two text blocks."""
    console = run_example(folder)
    data = plot_data(folder)
    for name, target in PICTURES.items():
        shutil.copyfile(folder / "helios-tune" / name, folder / target)
    return {"console": console, "data": data, "hook_order": render_hook_order(record_hook_order())}


def write(made: dict[str, Any], folder: Path) -> None:
    """Put what `make` made into the documentation."""
    IMAGES.mkdir(exist_ok=True)
    for target in PICTURES.values():
        shutil.copyfile(folder / target, IMAGES / target)
    PLOT_DATA.write_text(json.dumps(made["data"], indent=1) + "\n", encoding="utf-8")
    optuna_page = DOCS / "optuna.md"
    text = replace_block(
        optuna_page.read_text(encoding="utf-8"),
        "tune-console",
        "console",
        console_block(made["console"]),
    )
    optuna_page.write_text(text, encoding="utf-8")
    plugins_page = DOCS / "plugins.md"
    text = replace_block(
        plugins_page.read_text(encoding="utf-8"), "hook-order", "text", made["hook_order"]
    )
    plugins_page.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--check", action="store_true", help="compare only, write nothing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        made = make(Path(scratch))
        if args.check:
            stale = differences(made, Path(scratch))
            print("\n".join(stale) if stale else "the documentation's pictures are up to date")
            return 1 if stale else 0
        write(made, Path(scratch))
    print(f"wrote {', '.join(PICTURES.values())}, {PLOT_DATA.name} and two blocks of docs/")
    return 0


def differences(made: dict[str, Any], folder: Path) -> list[str]:
    """How the committed pictures differ from those just made (nothing: up to date)."""
    found = []
    committed = json.loads(PLOT_DATA.read_text(encoding="utf-8")) if PLOT_DATA.is_file() else {}
    if made["data"] != committed:
        found.append(f"{PLOT_DATA.relative_to(ROOT)}: the study's data differ")
    for target in PICTURES.values():
        if not (IMAGES / target).is_file() or png_size(IMAGES / target) != png_size(
            folder / target
        ):
            found.append(f"docs/images/{target}: missing, or of another size")
    page = (DOCS / "optuna.md").read_text(encoding="utf-8")
    shown = page.split("<!-- tune-console:start -->")[-1].split("<!-- tune-console:end -->")[0]
    if comparable_console(console_block(made["console"])) not in comparable_console(shown):
        found.append("docs/optuna.md: the console sample differs (timings aside)")
    page = (DOCS / "plugins.md").read_text(encoding="utf-8")
    if made["hook_order"] not in page:
        found.append("docs/plugins.md: the hook order differs")
    return found


if __name__ == "__main__":
    raise SystemExit(main())

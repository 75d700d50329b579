"""docs/troubleshooting.md quotes what helios prints: each problem of the page is made to
happen here, and every message the page quotes under its heading must be one that helios
printed (``...`` in a quote stands for text that depends on the user's code, and line
breaks in a quote are only layout)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import helios.data as hld
import helios.model as hlm
import helios.plugins as hlp
import helios.plugins.optuna as hlpo
import helios.trainer as hlt
from tests.test_docs import blocks_of

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "troubleshooting.md"


def _quotes_by_heading() -> dict[str, list[str]]:
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    headings = [(number, line[3:]) for number, line in enumerate(lines, 1) if line[:3] == "## "]
    quotes: dict[str, list[str]] = {title: [] for _, title in headings}
    for block in blocks_of(PAGE):
        assert block.language == "text", f"troubleshooting.md:{block.line}: not a quote"
        title = [title for number, title in headings if number < block.line][-1]
        quotes[title].append(block.code)
    return quotes


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _quotes(quoted: str, printed: str) -> bool:
    """Whether ``printed`` is ``quoted``, ``...`` matching any text."""
    pattern = ".*?".join(re.escape(_flat(part)) for part in _flat(quoted).split("..."))
    return re.fullmatch(pattern, _flat(printed)) is not None


def _error(run: Callable[[], object]) -> str:
    """The exception ``run`` raises, as a traceback's last line shows it."""
    try:
        run()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    raise AssertionError(f"{run} raised nothing")


def _warnings(run: Callable[[], object]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [f"{w.category.__name__}: {w.message}" for w in caught]


class Data(hld.DataModule):
    def train_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(TensorDataset(torch.randn(8, 2)), batch_size=4)


class Linear(hlm.Model):
    def __init__(self, width: int = 3) -> None:
        super().__init__("classifier")
        self.width = width

    def setup(self, fast_init: bool = False) -> None:
        self.net = torch.nn.Linear(2, self.width)

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any], fast_init: bool = False) -> None:
        self.net.load_state_dict(state_dict["net"])


class MyPlugin(hlp.Plugin):
    def __init__(self) -> None:
        super().__init__("my_plugin")


class Mover(hlp.Plugin):
    def __init__(self, plug_id: str) -> None:
        super().__init__(plug_id)
        self.unique_overrides.training_batch = True

    def process_training_batch(self, batch: Any, state: hlt.TrainingState) -> Any:
        return batch


class Trimmer(Mover):
    pass


class Opaque:
    """Not a tensor nor a plain container: refused by weights_only loading."""


def _checked(title: str, printed: list[str]) -> Iterator[str]:
    quotes = _quotes_by_heading()[title]
    assert quotes, f"no message quoted under {title!r}"
    for quote in quotes:
        assert any(_quotes(quote, message) for message in printed), (
            f"under {title!r} the page quotes\n{quote}\nbut helios printed\n" + "\n".join(printed)
        )
        yield quote


def check(title: str, printed: list[str], folder: Path | None = None) -> None:
    if folder is not None:
        printed = [message.replace(str(folder), "<chkpt_root>") for message in printed]
    assert list(_checked(title, printed))


def test_every_section_is_checked() -> None:
    checked = re.findall(r'check\(\s*"([^"]+)"', Path(__file__).read_text(encoding="utf-8"))
    assert sorted(checked) == sorted(_quotes_by_heading())
    assert len(checked) == 10


def test_section_stale_checkpoints(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    trainer = hlt.Trainer(chkpt_frequency=1, chkpt_root=tmp_path, use_cpu=True)
    trainer.fit(Linear(), Data())
    with caplog.at_level(logging.INFO, logger="helios"):
        hlt.Trainer(chkpt_frequency=1, chkpt_root=tmp_path, use_cpu=True).fit(Linear(), Data())
    resumed = [f"helios: {record.getMessage()}" for record in caplog.records]
    refused = _error(lambda: hlt.Trainer(chkpt_root=tmp_path, use_cpu=True).fit(Linear(4), Data()))
    check("Training ends at once, or starts from an old run", [*resumed, refused], tmp_path)


def test_section_validation_never_runs() -> None:
    trainer = hlt.Trainer(valid_frequency=1, use_cpu=True)
    study = optuna.create_study()
    printed = [
        _error(lambda: trainer.fit(Linear(), Data())),
        _error(
            lambda: hlpo.OptunaPlugin(study.ask(), "accuracy").configure_trainer(
                hlt.Trainer(use_cpu=True)
            )
        ),
        _error(lambda: hlt.Trainer(early_stop_cycles=2, use_cpu=True)),
    ]
    check("Validation never runs", printed)


def _plugin_class(name: str = "MyPlugin", **members: Any) -> Any:
    # Made with type() so that its qualified name is the plain one the page shows.
    def __init__(self: hlp.Plugin) -> None:
        hlp.Plugin.__init__(self, "my_plugin")

    return type(name, (hlp.Plugin,), {"__init__": __init__, **members})


def test_section_plugin_never_called() -> None:
    def configure_trainer(self: hlp.Plugin, trainer: hlt.Trainer) -> None:
        trainer.train_exceptions.append(KeyError)  # and forgets to register

    def should_training_stop(self: hlp.Plugin) -> bool:
        return True

    forgetful = _plugin_class(configure_trainer=configure_trainer)()
    stopper = _plugin_class(should_training_stop=should_training_stop)()
    trainer = hlt.Trainer(use_cpu=True)
    printed = [
        *_warnings(lambda: forgetful.configure_trainer(trainer)),
        *_warnings(lambda: trainer.register_plugin(stopper)),
    ]
    table = hlt.Trainer(use_cpu=True)
    table.register_plugin(Mover("mover"))
    printed.append(_error(lambda: table.register_plugin(Trimmer("trimmer"))))
    assert trainer.plugins["my_plugin"] is stopper  # the forgetful one never got in
    check("A plug-in is never called", printed)


NO_GUARD = """
import torch
from torch.utils.data import TensorDataset

import helios.data as hld
import helios.model as hlm
import helios.trainer as hlt


class Data(hld.DataModule):
    def train_dataloader(self):
        return self.create_dataloader(TensorDataset(torch.zeros(8, 2)), batch_size=2)


trainer = hlt.Trainer(use_cpu=True, cpu_processes=2, collective_timeout=60)
trainer.fit(hlm.Model("classifier"), Data())
"""


def main() -> None:
    """A function that defines its data module inside itself, as the page's example."""

    class Data(hld.DataModule):
        def train_dataloader(self) -> DataLoader[Any]:
            return self.create_dataloader(TensorDataset(torch.zeros(8, 2)), batch_size=2)

    hlt.Trainer(use_cpu=True, cpu_processes=2).fit(hlm.Model("classifier"), Data())


@pytest.mark.distributed
def test_section_workers_fail_to_start(tmp_path: Path) -> None:
    script = tmp_path / "no_guard.py"
    script.write_text(NO_GUARD, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    # Python's complaint in the worker, then helios's in the main process (both on stderr).
    bootstrapping = re.search(r"RuntimeError: .*?bootstrapping phase\.", done.stderr, re.S)
    failed = re.search(r"^\S*WorkerError: (.*?)$", done.stderr, re.M | re.S)
    assert bootstrapping is not None, done.stderr
    assert failed is not None, done.stderr
    printed = [bootstrapping[0], f"WorkerError: {failed[1]}", _error(main)]
    check("Worker processes fail to start", printed)


def test_section_unsafe_checkpoint(tmp_path: Path) -> None:
    hlt.Trainer(chkpt_frequency=1, chkpt_root=tmp_path, use_cpu=True).fit(Linear(), Data())
    path = tmp_path / "classifier" / "epoch_1_iter_2.pth"
    content = torch.load(path, weights_only=True)
    content["model"]["extra"] = Opaque()
    torch.save(content, path)
    printed = _error(lambda: hlt.Trainer(chkpt_root=tmp_path, use_cpu=True).fit(Linear(), Data()))
    check("A checkpoint is refused as unsafe", [printed], tmp_path)


def test_section_registering_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hlp.PLUGIN_REGISTRY, "_entries", dict(hlp.PLUGIN_REGISTRY._entries))
    first = hlp.PLUGIN_REGISTRY.register(_plugin_class())
    again = hlp.PLUGIN_REGISTRY.register(_plugin_class())  # the cell run again: replaced
    assert hlp.PLUGIN_REGISTRY.get("MyPlugin") is again is not first
    other = _plugin_class()
    other.__module__ = "another_module"
    printed = [_error(lambda: hlp.PLUGIN_REGISTRY.register(other))]
    trainer = hlt.Trainer(use_cpu=True)
    plugin = again()
    plugin.configure_trainer(trainer)
    printed.append(_error(lambda: plugin.configure_trainer(trainer)))
    assert list(trainer.plugins) == ["my_plugin"]
    check("Registering a plug-in again (notebooks)", printed)


class MyModel(Linear):
    def on_train_epoch_end(self, current_epoch: int) -> None:
        pass

    def append_metadata_to_chkpt_name(self, chkpt_name: str) -> str:
        return chkpt_name


def test_section_hook_never_called() -> None:
    def on_train_start(self: hlp.Plugin) -> None:
        pass

    printed = _warnings(lambda: hlt.Trainer(use_cpu=True).fit(MyModel(), Data()))
    plugin = _plugin_class(on_train_start=on_train_start)()
    printed += _warnings(lambda: hlt.Trainer(use_cpu=True).register_plugin(plugin))
    check("A hook is never called", printed)


class OneXData(hld.DataModule):
    def train_dataloader(self) -> Any:
        loader = DataLoader(TensorDataset(torch.zeros(8, 2)), batch_size=2)
        return loader, loader.sampler


def test_section_helios_1x_code() -> None:
    printed = [
        _error(lambda: hlt.Trainer(enable_tensorboard=True)),  # type: ignore[call-arg]
        _error(lambda: hlt.Trainer(use_cpu=True).fit(Linear(), OneXData())),
    ]
    check("Helios 1.x code is refused", printed)


def test_section_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine without CUDA, wherever the suite runs.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    printed = [_error(lambda: hlt.Trainer(use_cpu=False)), _error(hlp.CUDAPlugin)]
    check("There is no GPU", printed)


def test_section_early_stopping() -> None:
    trainer = hlt.Trainer(valid_frequency=1, early_stop_cycles=3, use_cpu=True)
    printed = [
        _error(lambda: trainer.fit(MyModel(), Data())),
        _error(lambda: hlt.Trainer(total_steps=float("inf"))),
    ]
    check("Early stopping never stops, or training never would", printed)

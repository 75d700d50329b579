"""The install facts agree with each other and with pyproject.toml, and the declared
dependency floors are enough to run helios."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

#: The one install command every page gives.
INSTALL = 'pip install torch==2.13.0 && pip install -e ".[dev]"'
PAGES = ["README.md", "docs/index.md", "docs/getting-started.md", "docs/optuna.md"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_gives_the_same_install_command(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    assert INSTALL in text
    installs = [
        line for line in text.splitlines() if re.search(r"pip install (torch|-e \.)", line)
    ]
    assert installs, page
    assert all(INSTALL in line for line in installs), installs


def test_the_extras_table_lists_every_extra() -> None:
    text = (ROOT / "docs/getting-started.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z]+)` \|", text, flags=re.MULTILINE))
    assert listed == set(PYPROJECT["project"]["optional-dependencies"])


def test_the_distribution_name_is_not_the_taken_one() -> None:
    assert PYPROJECT["project"]["name"] == "helios-train"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`helios-train`" in readme


def _floor(name: str) -> str:
    for requirement in PYPROJECT["project"]["dependencies"]:
        match = re.fullmatch(rf"{re.escape(name)}>=([\d.]+)", requirement)
        if match:
            return match[1]
    raise AssertionError(f"{name} has no >= floor in pyproject.toml")


SMOKE = """
import tempfile

import attrs
import optuna
import tqdm

print("versions", attrs.__version__, tqdm.__version__, optuna.__version__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

import helios.plugins.optuna as hlpo
import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ClassifierModel

root = tempfile.mkdtemp()
study = optuna.create_study(storage=f"sqlite:///{root}/s.db", direction="maximize")
for steps in (1, 2):  # the second run resumes the first
    trial = study.ask()
    trainer = hlt.Trainer(
        total_steps=steps, valid_frequency=1, chkpt_frequency=1, chkpt_root=root,
        use_cpu=True, enable_progress_bar=True,
    )
    plugin = hlpo.OptunaPlugin(trial, "accuracy")
    plugin.configure_trainer(trainer)
    model = ClassifierModel("floor")
    trainer.fit(model, ClassifierData())
    assert sorted(study.trials[-1].intermediate_values) == list(range(steps, steps + 1)), steps
print("floors ok")
"""


@pytest.mark.slow
def test_helios_runs_on_the_dependency_floors(tmp_path: Path) -> None:
    floors = {name: _floor(name) for name in ("attrs", "tqdm", "optuna")}
    target = tmp_path / "floors"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
            str(target),
            *(f"{name}=={version}" for name, version in floors.items()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    ran = subprocess.run(
        [sys.executable, "-c", SMOKE],
        cwd=ROOT,
        env={"PYTHONPATH": f"{target}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert "floors ok" in ran.stdout
    versions = ran.stdout.split("versions ")[1].split()[:3]
    assert [Version(v) for v in versions] == [
        Version(floors[n]) for n in ("attrs", "tqdm", "optuna")
    ]

"""The package as it ships: the documentation site builds, and the wheel installs and works.

Both run their tools in subprocesses, as a user would, and neither needs the network:
mkdocs, mkdocstrings, build, setuptools and wheel come with the ``dev`` extra, so a
missing tool is a failure here, not a skip. The wheel is built from a copy of the
sources, so the working tree gets no ``build/`` or ``*.egg-info`` from these tests.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import helios

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: The modules whose public names (``__all__``) the quick reference must list.
PUBLIC_MODULES = (
    "helios",
    "helios.core",
    "helios.core.loop",
    "helios.plugins",
    "helios.plugins.optuna",
    "helios.trainer",
    "helios.model",
    "helios.data",
    "helios.core.logging",
    "helios.optim",
    "helios.nn",
    "helios.testing",
)


def _run(
    args: list[str], cwd: Path, timeout: float, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env},
    )


# -- the documentation site -------------------------------------------------------------


def test_docs_build_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    run = _run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        timeout=120,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    # Strict mode aborts on a warning; check anyway, in case a plug-in logs past it.
    assert not [line for line in log.splitlines() if line.startswith("WARNING")], log
    pages = sorted(page.stem for page in DOCS.glob("*.md"))
    for stem in pages:
        built = site / ("index.html" if stem == "index" else f"{stem}/index.html")
        assert built.is_file(), f"docs/{stem}.md was not built into {built}"
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for anchor in ("helios.trainer.Trainer.fit", "helios.core.tree_map", "helios.plugins.Plugin"):
        assert f'id="{anchor}"' in api, f"the API reference lacks {anchor}"


def _reference_sections() -> dict[str, str]:
    text = (DOCS / "reference.md").read_text(encoding="utf-8")
    parts = re.split(r"^## `([\w.]+)`$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_quick_reference_lists_every_public_name() -> None:
    sections = _reference_sections()
    assert sorted(sections) == sorted(PUBLIC_MODULES)
    missing = {
        module: [
            name
            for name in importlib.import_module(module).__all__
            # Listed as `name`, `name(...)` or `name[...]`.
            if not re.search(rf"`{re.escape(name)}[`(\[]", sections[module])
        ]
        for module in PUBLIC_MODULES
    }
    assert {module: names for module, names in missing.items() if names} == {}, (
        "docs/reference.md does not list these public names under their module"
    )


# -- the wheel ----------------------------------------------------------------------------

SMOKE_TEST = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from typing import Any

    import torch
    from torch.utils.data import DataLoader, TensorDataset

    import helios
    import helios.plugins.optuna
    import helios.trainer as hlt

    target, version = Path(sys.argv[1]).resolve(), sys.argv[2]
    package = Path(helios.__file__).resolve().parent
    assert package.parent == target, f"imported helios from {package}, not the wheel"
    assert helios.__version__ == version, (helios.__version__, version)
    assert (package / "py.typed").is_file(), "py.typed is missing"


    class Data(helios.DataModule):
        def setup(self) -> None:
            inputs = torch.randn(12, 2, generator=torch.Generator().manual_seed(0))
            self.data = TensorDataset(inputs, inputs.sum(dim=1, keepdim=True))

        def train_dataloader(self) -> DataLoader[Any]:
            return self.create_dataloader(self.data, batch_size=4)


    class Net(helios.Model):
        def setup(self, fast_init: bool = False) -> None:
            self.net = torch.nn.Linear(2, 1).to(self.device)
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.1)
            self.steps = 0

        def train_step(self, batch: Any, state: helios.TrainingState) -> None:
            inputs, targets = batch
            loss = torch.nn.functional.mse_loss(self.net(inputs), targets)
            self.optimizer.zero_grad()
            torch.autograd.backward(loss)
            self.optimizer.step()
            self.steps += 1


    trainer = hlt.Trainer(train_unit="iteration", total_steps=3, use_cpu=True, random_seed=0)
    helios.DevicePlugin().configure_trainer(trainer)
    model = Net("smoke")
    assert trainer.fit(model, Data())
    assert (model.steps, trainer.state.global_iteration) == (3, 3), trainer.state
    print("smoke test passed:", helios.__version__, package)
    """
)


def _copy_sources(destination: Path) -> None:
    """What the build reads: the project file, the readme and the package."""
    destination.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, destination / name)
    shutil.copytree(
        ROOT / "helios", destination / "helios", ignore=shutil.ignore_patterns("__pycache__")
    )


def test_wheel_installs_and_trains(tmp_path: Path) -> None:
    sources, dist, target = tmp_path / "src", tmp_path / "dist", tmp_path / "site"
    _copy_sources(sources)
    # The sdist first, then the wheel built from the sdist (build's default), offline.
    built = _run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(sources)],
        cwd=tmp_path,
        timeout=180,
    )
    assert built.returncode == 0, f"python -m build failed:\n{built.stdout}{built.stderr}"
    version = helios.__version__
    wheel = dist / f"helios_train-{version}-py3-none-any.whl"
    sdist = dist / f"helios_train-{version}.tar.gz"
    assert sorted(dist.iterdir()) == sorted([wheel, sdist]), list(dist.iterdir())

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "helios/py.typed" in names
    assert "helios/plugins/optuna.py" in names
    info = f"helios_train-{version}.dist-info/"
    assert all(name.startswith(("helios/", info)) for name in names), [
        name for name in names if not name.startswith("helios")
    ]
    with tarfile.open(sdist) as archive:
        assert f"helios_train-{version}/helios/py.typed" in archive.getnames()

    installed = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ],
        cwd=tmp_path,
        timeout=120,
    )
    assert installed.returncode == 0, f"pip install failed:\n{installed.stdout}{installed.stderr}"

    smoke = tmp_path / "smoke.py"
    smoke.write_text(SMOKE_TEST, encoding="utf-8")
    # Run away from the repository, with the installed copy first on the path.
    ran = _run(
        [sys.executable, "-W", "error", str(smoke), str(target), version],
        cwd=tmp_path,
        timeout=120,
        PYTHONPATH=str(target),
    )
    assert ran.returncode == 0, (
        f"the installed wheel failed its smoke test:\n{ran.stdout}{ran.stderr}"
    )
    assert "smoke test passed" in ran.stdout

"""Fetch the wheels that ``scripts/gpu-check`` needs on a GPU machine with no package index.

That machine's ``python3`` (CPython 3.12, x86-64 Linux) already has PyTorch, attrs,
hypothesis, pytest, tqdm, typing-extensions, NumPy, PyYAML, packaging and MarkupSafe, but
not Optuna. This script resolves Optuna and its dependencies for that interpreter and
platform (``pip download --only-binary=:all:``), keeps the wheels of the packages the
machine lacks in ``.gpu-wheels/`` (git-ignored; the folder travels with the project) and
checks that they stay small. ``--verify`` also installs the whole set into a scratch folder
with a local Python 3.12, when one is found, and imports Optuna from it.

Usage::

    scripts/gpu-wheels                  # the Optuna version installed here, else the newest
    scripts/gpu-wheels --optuna 4.5.0   # a given version
    scripts/gpu-wheels --verify         # and check that the set installs and imports
"""

from __future__ import annotations

import argparse
import glob
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / ".gpu-wheels"
#: What the folder may weigh: it travels with the project, whose copy is limited.
LIMIT = 64 * 2**20
PYTHON_VERSION = "3.12"
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
#: Distributions the GPU machine's python3 already has (normalised names).
ALREADY_THERE = frozenset(
    {
        "attrs",
        "filelock",
        "hypothesis",
        "jinja2",
        "markupsafe",
        "numpy",
        "packaging",
        "pytest",
        "pyyaml",
        "sortedcontainers",
        "torch",
        "tqdm",
        "typing-extensions",
    }
)


def normalise(name: str) -> str:
    """A distribution's name as packaging normalises it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_of(wheel: Path | str) -> str:
    """The normalised distribution name of a wheel file (``Mako-1.3.0-py3-none-any.whl``)."""
    return normalise(Path(wheel).name.split("-", 1)[0])


def to_carry(wheels: Iterable[Path]) -> list[Path]:
    """The wheels of distributions the GPU machine lacks, sorted by name."""
    return sorted(
        (wheel for wheel in wheels if distribution_of(wheel) not in ALREADY_THERE),
        key=lambda wheel: wheel.name.lower(),
    )


def default_requirement() -> str:
    try:
        return f"optuna=={importlib.metadata.version('optuna')}"
    except importlib.metadata.PackageNotFoundError:
        return "optuna"


def download(requirement: str, into: Path) -> list[Path]:
    """Resolve ``requirement`` and its dependencies for CPython 3.12 on x86-64 Linux."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--abi",
        "cp312",
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
        "--dest",
        str(into),
        requirement,
    ]
    subprocess.run(command, check=True)
    return sorted(into.glob("*.whl"))


def python312() -> str | None:
    """A working Python 3.12 on this machine, if there is one."""
    candidates = [shutil.which("python3.12") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    for candidate in filter(None, candidates):
        done = subprocess.run([candidate, "-c", "import sys"], capture_output=True, check=False)
        if done.returncode == 0:
            return candidate
    return None


def verify(every_wheel: Sequence[Path], carried: Sequence[Path], python: str) -> None:
    """Install the carried wheels alone, then the whole set, and import Optuna with it."""
    with tempfile.TemporaryDirectory(prefix="helios-wheels-") as scratch:
        alone, whole = Path(scratch, "alone"), Path(scratch, "whole")
        install = [python, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
        install += ["--no-compile", "--disable-pip-version-check", "--target"]
        subprocess.run([*install, str(alone), *map(str, carried)], check=True)
        subprocess.run([*install, str(whole), *map(str, every_wheel)], check=True)
        probe = (
            "import optuna, sqlalchemy, alembic\n"
            "study = optuna.create_study(storage='sqlite:///:memory:')\n"
            "study.optimize(lambda trial: trial.suggest_float('x', 0, 1), n_trials=2)\n"
            "print('optuna', optuna.__version__, 'installed from the wheels and ran a study')\n"
        )
        env = {**os.environ, "PYTHONPATH": str(whole), "PYTHONNOUSERSITE": "1"}
        subprocess.run([python, "-c", probe], check=True, env=env)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--optuna", help="the Optuna version (default: the one installed here)")
    parser.add_argument("--verify", action="store_true", help="install and import the set")
    args = parser.parse_args(argv)
    requirement = f"optuna=={args.optuna}" if args.optuna else default_requirement()
    with tempfile.TemporaryDirectory(prefix="helios-download-") as scratch:
        every_wheel = download(requirement, Path(scratch))
        carried = to_carry(every_wheel)
        if not any(distribution_of(wheel) == "optuna" for wheel in carried):
            raise SystemExit(f"pip fetched no Optuna wheel for {requirement}")
        if FOLDER.exists():
            shutil.rmtree(FOLDER)
        FOLDER.mkdir()
        for wheel in carried:
            shutil.copy2(wheel, FOLDER / wheel.name)
        total = sum((FOLDER / wheel.name).stat().st_size for wheel in carried)
        print(f"\n{FOLDER.relative_to(ROOT)}/ ({requirement}, CPython {PYTHON_VERSION}, x86-64):")
        for wheel in carried:
            print(f"  {wheel.name}  {wheel.stat().st_size / 2**20:.2f} MiB")
        left_out = {distribution_of(w) for w in every_wheel} - {
            distribution_of(w) for w in carried
        }
        print(f"  left out (already on the GPU machine): {', '.join(sorted(left_out)) or '-'}")
        print(f"  total {total / 2**20:.2f} MiB (limit {LIMIT / 2**20:.0f} MiB)")
        if total > LIMIT:
            print("the wheels are over the limit", file=sys.stderr)
            return 1
        if args.verify:
            python = python312()
            if python is None:
                print(
                    "no Python 3.12 here: the set was not installed for a check", file=sys.stderr
                )
                return 1
            verify(every_wheel, carried, python)
    return 0


if __name__ == "__main__":
    sys.exit(main())

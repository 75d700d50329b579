"""``scripts/gpu-check`` and ``scripts/gpu-wheels`` on a machine without a GPU.

What needs a GPU runs there (``scripts/gpu-check`` is that run); here: the refusal without
CUDA, the report it builds from pytest's JUnit XML and the benchmark's results, and how
the wheel script chooses what to carry.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = load("gpu_check")
gpu_wheels = load("gpu_wheels")


def test_both_scripts_are_executable() -> None:
    for name in ("gpu-check", "gpu-wheels"):
        assert os.access(SCRIPTS / name, os.X_OK), name


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="CUDA is here: scripts/gpu-check would run the whole check"
)
def test_gpu_check_without_cuda_says_so_and_fails() -> None:
    done = subprocess.run(
        [str(SCRIPTS / "gpu-check")],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "no CUDA device" in done.stderr
    assert "Nothing was checked" in done.stderr


def junit_of(tmp_path: Path, source: str) -> Path:
    """Run pytest on one test file and return its JUnit XML report."""
    (tmp_path / "test_sample.py").write_text(source)
    junit = tmp_path / "junit.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        timeout=120,
    )
    return junit


SAMPLE = """
import pytest

def test_passes():
    pass

def test_fails():
    assert 1 == 2

@pytest.mark.skip(reason="Optuna is not installed here")
def test_skipped():
    pass

@pytest.mark.skip(reason="Optuna is not installed here")
def test_skipped_too():
    pass
"""


def test_the_report_counts_and_names_what_pytest_reported(tmp_path: Path) -> None:
    counts = gpu_check.suite_counts(junit_of(tmp_path, SAMPLE))
    assert counts["tests"] == 4
    assert counts["failed"] == ["test_sample::test_fails (failure)"]
    assert counts["skipped"] == {"Optuna is not installed here": 2}
    rows = gpu_check.suite_rows(counts, 1, 3.2)
    assert rows[0] == (
        "GPU suite (tests/gpu)",
        "1 passed, 1 failed, 2 skipped (3 s)",
        "all pass",
        "FAILED",
    )
    assert ("  failed", "test_sample::test_fails (failure)", "", "") in rows
    assert ("  skipped", "2 x Optuna is not installed here", "", "") in rows


def test_a_suite_passes_only_if_something_passed_and_nothing_failed(tmp_path: Path) -> None:
    clean = {"tests": 2, "failed": [], "skipped": {"why": 1}}
    assert gpu_check.suite_rows(clean, 0, 1.0)[0][3] == "ok"
    all_skipped = {"tests": 2, "failed": [], "skipped": {"no CUDA": 2}}
    assert gpu_check.suite_rows(all_skipped, 0, 1.0)[0][3] == "FAILED"
    assert gpu_check.suite_rows(clean, -9, 1.0)[0][3] == "KILLED"
    missing = gpu_check.suite_counts(tmp_path / "never-written.xml")
    assert (
        gpu_check.suite_rows(missing, -9, 180.0)[0][1] == "0 passed, 0 failed, 0 skipped (180 s)"
    )


def test_the_benchmark_rows_come_from_its_results(tmp_path: Path) -> None:
    results = tmp_path / "benchmark.json"
    summary = [{"what": "step", "value": "1.010x", "target": "<= 1.02x", "verdict": "met"}]
    results.write_text(json.dumps({"device": "GPU", "torch": "2.x", "summary": summary}))
    rows = gpu_check.benchmark_rows(results, 0, 41.0)
    assert rows == [
        ("GPU benchmark", "GPU, torch 2.x (41 s)", "", "ok"),
        ("  step", "1.010x", "<= 1.02x", "met"),
    ]
    assert gpu_check.benchmark_rows(results, -9, 100.0)[0][3] == "KILLED"
    assert gpu_check.benchmark_rows(tmp_path / "none.json", 1, 2.0)[0][3] == "FAILED"


def test_the_table_lines_up_its_columns() -> None:
    text = gpu_check.table([("a", "long result", "T", "ok"), ("longer check", "R", "", "")])
    lines = text.splitlines()
    assert lines[0] == lines[2] == lines[-1]
    assert set(lines[0]) == {"-"}
    header, first, second = lines[1], lines[3], lines[4]
    assert header.index("result") == first.index("long result") == second.index("R")
    assert header.index("target") == first.index("T")


def test_the_wheels_carried_are_those_the_gpu_machine_lacks() -> None:
    names = [
        "optuna-5.0.0-py3-none-any.whl",
        "SQLAlchemy-2.1.9-cp312-cp312-manylinux_2_17_x86_64.whl",
        "Mako-1.4.3-py3-none-any.whl",
        "numpy-2.5.5-cp312-cp312-manylinux_2_28_x86_64.whl",
        "typing_extensions-4.16.0-py3-none-any.whl",
        "PyYAML-6.0.4-cp312-cp312-manylinux2014_x86_64.whl",
    ]
    assert gpu_wheels.distribution_of(names[1]) == "sqlalchemy"
    assert gpu_wheels.distribution_of(names[4]) == "typing-extensions"
    carried = gpu_wheels.to_carry(Path(name) for name in names)
    assert [wheel.name for wheel in carried] == [names[2], names[0], names[1]]


def test_the_wheel_folder_is_ignored_by_git() -> None:
    done = subprocess.run(
        ["git", "check-ignore", "-q", ".gpu-wheels/optuna-5.0.0-py3-none-any.whl"],
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0

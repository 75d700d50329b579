"""Check helios on a CUDA machine: the GPU suite, then the GPU benchmark, then one table.

Runs with the interpreter that runs it, as it is: helios comes from this checkout (put on
``PYTHONPATH``), nothing is built or downloaded, and what that interpreter lacks (Optuna
and its dependencies) is installed from the wheels ``scripts/gpu-wheels`` left in
``.gpu-wheels/`` into a scratch folder, also put on ``PYTHONPATH``. Without CUDA it says so
and exits with status 1; otherwise the status is 0 when the suite passed and the
benchmark ran, 1 if not. Targets missed by the benchmark are shown, not failed.

Usage::

    scripts/gpu-check                 # suite, full benchmark, table
    scripts/gpu-check --quick         # a shorter benchmark
    scripts/gpu-check --out logs/     # also keep the logs, the JUnit XML and the results
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / ".gpu-wheels"


def cuda_status() -> str | None:
    """Why this machine cannot run the check, or ``None`` when it can."""
    try:
        import torch
    except ImportError as error:
        return f"this python3 has no PyTorch ({error})"
    if not torch.cuda.is_available():
        return (
            f"no CUDA device: torch {torch.__version__} here says torch.cuda.is_available() "
            "is False; run this on a machine with a GPU"
        )
    return None


def machine() -> str:
    import torch

    return (
        f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, torch "
        f"{torch.__version__}, Python {sys.version.split()[0]}"
    )


def install_wheels(site: Path) -> str:
    """Install the carried wheels into ``site`` if Optuna is missing; say what was done."""
    if importlib.util.find_spec("optuna") is not None:
        return "Optuna already installed"
    wheels = sorted(WHEELS.glob("*.whl"))
    if not wheels:
        return "no Optuna and no wheels in .gpu-wheels/ (scripts/gpu-wheels): its tests skip"
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
    command += ["--no-compile", "--no-cache-dir", "--disable-pip-version-check"]
    done = subprocess.run(
        [*command, "--target", str(site), *map(str, wheels)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"installing the wheels failed ({done.stderr.strip()[-300:]}): Optuna tests skip"
    return f"installed {len(wheels)} wheels from .gpu-wheels/"


def run_logged(command: Sequence[str], env: dict[str, str], log: Path, timeout: float) -> int:
    """Run ``command``, showing and logging its output; kill it (and its children) after
    ``timeout`` seconds. Returns its status (``-9`` when killed)."""
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None
        reader = threading.Thread(target=_copy, args=(process.stdout, sink), daemon=True)
        reader.start()
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = -9
            message = f"\n[killed after {timeout:.0f} s]\n"
            print(message, flush=True)
            sink.write(message)
        reader.join(timeout=5)
    return status


def _copy(source: TextIO, sink: TextIO) -> None:
    for line in source:
        sys.stdout.write(line)
        sys.stdout.flush()
        sink.write(line)


def suite_counts(junit: Path) -> dict[str, Any]:
    """Counts, failed tests and skip reasons from pytest's JUnit XML report."""
    counts: dict[str, Any] = {"tests": 0, "failed": [], "skipped": {}}
    if not junit.exists():
        return counts
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        counts["tests"] += 1
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        for child in case:
            if child.tag in ("failure", "error"):
                counts["failed"].append(f"{name} ({child.tag})")
            elif child.tag == "skipped":
                reason = child.get("message", "")
                counts["skipped"][reason] = counts["skipped"].get(reason, 0) + 1
    return counts


def table(rows: Sequence[tuple[str, str, str, str]]) -> str:
    """The rows as one text table: check, result, target, verdict."""
    header = ("check", "result", "target", "")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([rule, lines[0], rule, *lines[1:], rule])


Row = tuple[str, str, str, str]


def suite_rows(counts: dict[str, Any], status: int, seconds: float) -> list[Row]:
    skipped = sum(counts["skipped"].values())
    failed = len(counts["failed"])
    passed = counts["tests"] - failed - skipped
    if status == -9:
        verdict = "KILLED"
    elif failed or status != 0 or passed == 0:
        verdict = "FAILED"
    else:
        verdict = "ok"
    rows = [
        (
            "GPU suite (tests/gpu)",
            f"{passed} passed, {failed} failed, {skipped} skipped ({seconds:.0f} s)",
            "all pass",
            verdict,
        )
    ]
    rows += [("  failed", _clip(name), "", "") for name in counts["failed"][:12]]
    for reason, n in counts["skipped"].items():
        rows.append(("  skipped", f"{n} x {_clip(reason)}", "", ""))
    return rows


def _clip(text: str, width: int = 76) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def benchmark_rows(results: Path, status: int, seconds: float) -> list[Row]:
    if status != 0 or not results.exists():
        word = "KILLED" if status == -9 else "FAILED"
        return [("GPU benchmark", f"exit status {status} ({seconds:.0f} s)", "runs", word)]
    data = json.loads(results.read_text())
    rows = [
        ("GPU benchmark", f"{data['device']}, torch {data['torch']} ({seconds:.0f} s)", "", "ok")
    ]
    for row in data["summary"]:
        rows.append((f"  {row['what']}", row["value"], row["target"], row["verdict"]))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a shorter benchmark")
    parser.add_argument("--out", type=Path, help="keep logs, JUnit XML and results here")
    parser.add_argument("--suite-timeout", type=float, default=170.0, help="seconds (170)")
    parser.add_argument("--bench-timeout", type=float, default=100.0, help="seconds (100)")
    args = parser.parse_args(argv)
    problem = cuda_status()
    if problem is not None:
        print(f"scripts/gpu-check: {problem}. Nothing was checked.", file=sys.stderr)
        return 1
    out = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="helios-gpu-"))
    out.mkdir(parents=True, exist_ok=True)
    site = Path(tempfile.mkdtemp(prefix="helios-gpu-site-"))
    installed = install_wheels(site)
    print(f"scripts/gpu-check: {installed}; logs in {out}", flush=True)
    paths = [str(ROOT), str(site), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    env["PYTHONUNBUFFERED"] = "1"

    junit = out / "junit.xml"
    suite = [sys.executable, "-m", "pytest", "tests/gpu", "-v", "-p", "no:cacheprovider"]
    suite += [f"--junitxml={junit}"]
    if importlib.util.find_spec("pytest_timeout") is not None:
        suite += ["--timeout=150"]  # a hung test fails alone instead of stopping the suite
    started = time.perf_counter()
    suite_status = run_logged(suite, env, out / "suite.log", args.suite_timeout)
    suite_seconds = time.perf_counter() - started

    results = out / "benchmark.json"
    bench = [sys.executable, "benchmarks/gpu.py", "--json", str(results)]
    bench += ["--quick"] if args.quick else []
    started = time.perf_counter()
    bench_status = run_logged(bench, env, out / "benchmark.log", args.bench_timeout)
    bench_seconds = time.perf_counter() - started

    counts = suite_counts(junit)
    rows = suite_rows(counts, suite_status, suite_seconds)
    rows += benchmark_rows(results, bench_status, bench_seconds)
    rows += [("wheels", installed, "", ""), ("machine", machine(), "", "")]
    print("\n" + table(rows), flush=True)
    passed = rows[0][3] == "ok" and bench_status == 0
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

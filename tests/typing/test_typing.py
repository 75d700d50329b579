"""The public API's types, checked by running mypy --strict.

``pass/`` holds user code that must type-check (``assert_type`` pins the inferred types);
it is also run, so the types describe what really happens. ``fail/`` holds code that must
not type-check: every line that must be reported ends in ``# E: <code>[, <code>...]``, and
mypy must report exactly those (line, error code) pairs in that file and nothing else.

mypy runs twice in all (once over ``pass/``, once over ``fail/``), in-process, from the
repository root with the repository's ``mypy.ini`` (which ``--strict`` only restates), so
its cache in ``.mypy_cache`` is shared with ordinary ``mypy`` runs. Only errors reported
in the checked files count here; errors inside helios itself are the project's own
``mypy`` run's to report.

Users may check their code with pyright rather than mypy, so ``pass/`` must also satisfy
basedpyright in strict mode (``pyrightconfig.json`` beside this file). It runs in a
subprocess; it ships its own Node.js runtime, so it needs no network. The few places
where the two checkers legitimately disagree carry a ``# pyright: ignore[<rule>]``
comment, which mypy does not read, and the configuration makes an ignore that is no
longer needed an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import runpy
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from mypy import api

import helios.plugins as hlp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PASS_FILES = sorted((HERE / "pass").glob("*.py"))
PYRIGHT_CONFIG = HERE / "pyrightconfig.json"
FAIL_FILES = sorted((HERE / "fail").glob("*.py"))

#: ``# E: arg-type`` or ``# E: arg-type, assignment`` at the end of a line.
_MARKER = re.compile(r"#\s*E:\s*(?P<codes>[a-z][\w-]*(?:\s*,\s*[a-z][\w-]*)*)\s*$")
#: ``path:line: error: message  [code]`` (notes are other lines and are ignored).
_ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: .*?(?:  \[(?P<code>[\w-]+)\])?$")

Findings = dict[Path, set[tuple[int, str]]]


def _run_mypy(files: Sequence[Path]) -> tuple[str, int, Findings]:
    """Run mypy --strict on ``files``; return its report, exit status and errors by file."""
    args = [
        "--config-file",
        "mypy.ini",
        "--strict",
        "--show-error-codes",
        "--no-pretty",
        "--no-error-summary",
        "--hide-error-context",
        # Files named on the command line are checked even though mypy.ini excludes fail/.
        *(path.relative_to(ROOT).as_posix() for path in files),
    ]
    # mypy.ini's paths (mypy_path, exclude) are relative to the working directory.
    with contextlib.chdir(ROOT):
        stdout, stderr, status = api.run(args)
    report = stdout + stderr
    findings: Findings = {}
    for line in stdout.splitlines():
        match = _ERROR.match(line)
        if match is not None:
            path = (ROOT / match["path"]).resolve()
            findings.setdefault(path, set()).add((int(match["line"]), match["code"] or "?"))
    return report, status, findings


def _expected(path: Path) -> set[tuple[int, str]]:
    expected: set[tuple[int, str]] = set()
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        match = _MARKER.search(text)
        if match is not None:
            expected.update((number, code.strip()) for code in match["codes"].split(","))
    return expected


@pytest.fixture(scope="module")
def fail_run() -> tuple[str, int, Findings]:
    return _run_mypy(FAIL_FILES)


def test_the_folders_are_not_empty() -> None:
    assert PASS_FILES
    assert FAIL_FILES


def test_pass_files_type_check() -> None:
    report, status, findings = _run_mypy(PASS_FILES)
    assert status in (0, 1), f"mypy did not run cleanly:\n{report}"
    errors = {path.name: sorted(findings[path]) for path in PASS_FILES if path in findings}
    assert errors == {}, f"mypy --strict refused tests/typing/pass:\n{report}"


@pytest.mark.parametrize("path", PASS_FILES, ids=lambda path: path.stem)
def test_pass_file_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The typed code is real code: run it (warnings are errors under this suite's config).
    # Plug-in classes it registers must not leak into the other tests.
    monkeypatch.setattr(hlp.PLUGIN_REGISTRY, "_entries", dict(hlp.PLUGIN_REGISTRY._entries))
    runpy.run_path(str(path), run_name=f"typing_pass_{path.stem}")


@pytest.mark.parametrize("path", FAIL_FILES, ids=lambda path: path.stem)
def test_fail_file_reports_exactly_the_marked_errors(
    path: Path, fail_run: tuple[str, int, Findings]
) -> None:
    report, status, findings = fail_run
    assert status in (0, 1), f"mypy did not run cleanly:\n{report}"
    expected = _expected(path)
    assert expected, f"{path.name} marks no line with '# E: <code>'"
    actual = findings.get(path.resolve(), set())
    missing = sorted(expected - actual)
    unexpected = sorted(actual - expected)
    assert (missing, unexpected) == ([], []), (
        f"{path.name}: marked but not reported: {missing}; reported but not marked: "
        f"{unexpected}\n\nmypy said:\n{report}"
    )


def test_pass_files_type_check_under_basedpyright() -> None:
    # basedpyright is in the dev extra: missing, it is a failure, not a skip. It is told
    # which interpreter's packages to read, and PATH is left without this environment's
    # scripts, as when the suite runs as `.venv/bin/python -m pytest` without activating.
    env = {**os.environ, "PATH": os.pathsep.join(("/usr/bin", "/bin"))}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "basedpyright",
            "--project",
            str(PYRIGHT_CONFIG),
            "--pythonpath",
            sys.executable,
            "--outputjson",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode in (0, 1), f"basedpyright did not run:\n{run.stdout}{run.stderr}"
    report = json.loads(run.stdout)
    assert report["summary"]["filesAnalyzed"] == len(PASS_FILES), report["summary"]
    errors = [
        f"{Path(d['file']).relative_to(ROOT)}:{d['range']['start']['line'] + 1}: "
        f"{d['message']} ({d.get('rule', '?')})"
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    assert errors == [], "basedpyright (strict) refused tests/typing/pass:\n" + "\n".join(errors)

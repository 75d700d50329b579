"""Run the code in the documentation, so that the docs cannot rot.

Every ``docs/*.md`` page is one test. Its fenced ``python`` blocks run in the order they
appear, in one shared namespace (a fresh module per page, so a page reads as one script),
with a temporary directory as the working directory. Warnings are errors, as in the rest
of the suite.

A block is skipped only when its fence says so: `````python no-run`````. Such a block is
still compiled, so it cannot hold a syntax error. Blocks in other languages (``bash``,
``text``, ...) are not run; a language this file does not know is an error, so that a
typo such as `````pyhton````` cannot hide a block from the test.

The examples are also type-checked: helios is meant for code checked with
``mypy --strict``, and its docs should be such code. Each page's python blocks (``no-run``
ones included) go into one file at their own line numbers, so mypy's reports point at
the page's lines.
"""

from __future__ import annotations

import contextlib
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from mypy import api

import helios.plugins as hlp

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]

#: The info string's first word for blocks that run, and the word that stops one running.
PYTHON = "python"
NO_RUN = "no-run"
#: Languages of blocks that are shown, not run.
SHOWN_ONLY = frozenset({"bash", "console", "sh", "shell", "text", "toml", "yaml", "ini", ""})

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page."""

    page: Path
    line: int  # the line of the block's first code line (1-based)
    info: tuple[str, ...]
    code: str

    @property
    def language(self) -> str:
        return self.info[0] if self.info else ""

    def compiled(self) -> types.CodeType:
        # Pad with blank lines so that tracebacks point at the page's own line numbers.
        return compile("\n" * (self.line - 1) + self.code, str(self.page), "exec")


def blocks_of(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, in order (CommonMark fences, unnested)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        first = index
        body: list[str] = []
        while index < len(lines):
            closing = _FENCE.match(lines[index])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"]
            ):
                break
            text = lines[index]
            body.append(text[min(indent, len(text) - len(text.lstrip(" "))) :])
            index += 1
        else:
            raise AssertionError(f"{page.name}:{first}: a code fence is never closed")
        index += 1
        code = "\n".join(body) + "\n"
        blocks.append(Block(page, first + 1, tuple(opening["info"].split()), code))
    return blocks


def test_there_are_pages() -> None:
    assert {page.name for page in PAGES} >= {"index.md", "plugins.md"}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_fences_are_known(page: Path) -> None:
    for block in blocks_of(page):
        where = f"{page.name}:{block.line}"
        if block.language == PYTHON:
            assert set(block.info[1:]) <= {NO_RUN}, f"{where}: unknown fence words {block.info}"
        else:
            assert block.language in SHOWN_ONLY, (
                f"{where}: unknown code block language {block.language!r}; use "
                f"{PYTHON!r} for code that runs or one of {sorted(SHOWN_ONLY)}"
            )


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each page runs twice in the same folder, as a reader who runs it again would: the
    second run meets the checkpoints and files the first one left."""
    blocks = [block for block in blocks_of(page) if block.language == PYTHON]
    monkeypatch.chdir(tmp_path)
    # The page's examples register plug-in classes; keep them out of the other tests.
    monkeypatch.setattr(hlp.PLUGIN_REGISTRY, "_entries", dict(hlp.PLUGIN_REGISTRY._entries))
    for run in ("first", "second"):
        module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
        module.__file__ = str(page)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        for block in blocks:
            code = block.compiled()
            if NO_RUN in block.info:
                continue
            try:
                exec(code, module.__dict__)
            except Exception as error:
                raise AssertionError(
                    f"{page.name}, {run} run: the python block at line {block.line} "
                    f"failed: {error!r}"
                ) from error


def test_examples_type_check(tmp_path: Path) -> None:
    files: dict[Path, Path] = {}
    for page in PAGES:
        lines = [""] * len(page.read_text(encoding="utf-8").splitlines())
        for block in blocks_of(page):
            if block.language == PYTHON:
                code = block.code.splitlines()
                lines[block.line - 1 : block.line - 1 + len(code)] = code
        checked = tmp_path / f"docs_{page.stem.replace('-', '_')}.py"
        checked.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files[checked] = page
    # mypy.ini's relative paths (mypy_path) are relative to the working directory.
    with contextlib.chdir(ROOT):
        stdout, stderr, status = api.run(
            ["--config-file", "mypy.ini", "--strict", "--no-error-summary", *map(str, files)]
        )
    assert status in (0, 1), f"mypy did not run cleanly:\n{stdout}{stderr}"
    # Errors inside helios are for the project's own mypy run; the pages' are ours.
    errors = [
        line.replace(str(checked), str(page.relative_to(ROOT)))
        for line in stdout.splitlines()
        for checked, page in files.items()
        if line.startswith(f"{checked}:")
    ]
    assert errors == [], "mypy --strict refused the docs' examples:\n" + "\n".join(errors)


def test_blocks_of_reads_fences(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n"
        "```python\n"
        "x = 1\n"
        "```\n"
        "- item\n"
        "  ```python no-run\n"
        "  y = 2\n"
        "  ```\n"
        "````text\n"
        "```python\n"
        "````\n",
        encoding="utf-8",
    )
    blocks = blocks_of(page)
    assert [(b.line, b.info, b.code) for b in blocks] == [
        (3, ("python",), "x = 1\n"),
        (7, ("python", "no-run"), "y = 2\n"),
        (10, ("text",), "```python\n"),
    ]

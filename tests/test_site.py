"""The documentation site as readers see it: every page opened in a real browser.

The site is built with mkdocs into a temporary folder, served on 127.0.0.1 by a thread of
this process, and every page is opened 1280 px wide in headless Chromium (Debian's
``chromium``, driven by Playwright over the DevTools protocol; Playwright's own browser
download is never used). On every page: no JavaScript error, no request that fails or
leaves the machine, no link to a missing page or anchor of the site, no broken image,
every code block highlighted by Pygments, every admonition rendered as one, and no table
wider than the content column. A screenshot of every page is saved under the test's
temporary folder; where is printed at the end of the run.

The tests are marked ``browser``. Where Chromium is missing they skip, naming the command
that installs it, except on CI (``CI`` set), where that is a failure: ``.ci/run``
installs it.
"""

from __future__ import annotations

import contextlib
import functools
import html
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, sync_playwright

from tests.test_docs import blocks_of

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
INSTALL = "apt-get install -y chromium"
#: The viewport: the narrowest common laptop width at which tables must still fit.
WIDTH, HEIGHT = 1280, 1600
#: Chromium on a machine with no display and a closed network (no background traffic).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Languages whose blocks must come out as Pygments tokens, not plain text.
HIGHLIGHTED = frozenset({"python", "pycon", "bash", "console", "toml", "yaml", "ini"})

#: What a page shows the test, read in the page itself once it has settled.
INSPECT = """() => {
  const content = document.querySelector(".md-content__inner");
  const blocks = Array.from(content.querySelectorAll("pre")).map((pre) => {
    const box = pre.closest(".highlight");
    const language = box ? (box.className.match(/\\blanguage-(\\S+)/) || [])[1] : undefined;
    const tokens = pre.querySelectorAll("code span[class]:not(.w)").length;
    return { language: language || "", highlighted: box !== null, tokens,
             text: pre.innerText.slice(0, 60) };
  });
  const tables = Array.from(content.querySelectorAll("table")).map((table) => {
    const wrap = table.closest(".md-typeset__scrollwrap") || table.parentElement;
    return { width: table.scrollWidth, scrolls: wrap.scrollWidth > wrap.clientWidth,
             head: table.rows[0] ? table.rows[0].innerText.slice(0, 60) : "" };
  });
  const images = Array.from(document.images)
    .filter((img) => !img.complete || img.naturalWidth === 0).map((img) => img.src);
  const links = Array.from(document.querySelectorAll("a[href]")).map((a) => a.href);
  const markers = Array.from(content.querySelectorAll("p"))
    .map((p) => p.innerText).filter((text) => text.startsWith("!!!"));
  return { contentWidth: content.clientWidth, blocks, tables, images, links, markers };
}"""


class Block(TypedDict):
    language: str
    highlighted: bool
    tokens: int
    text: str


class Table(TypedDict):
    width: float
    scrolls: bool
    head: str


class Seen(TypedDict):
    contentWidth: float
    blocks: list[Block]
    tables: list[Table]
    images: list[str]
    links: list[str]
    markers: list[str]


@dataclass(frozen=True)
class Site:
    """The built site: its folder, the address it is served at, where screenshots go."""

    root: Path
    url: str
    shots: Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the request log out of the test output."""


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = f"Chromium is not installed here: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests, but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("site")
    root, shots = folder / "html", folder / "screenshots"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, f"mkdocs build failed:\n{built.stdout}{built.stderr}"
    shots.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield Site(root, f"http://127.0.0.1:{server.server_port}/", shots)
        server.shutdown()
        thread.join()
    # Past the output capture, so that the path shows in a passing run too.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\nsite screenshots ({len(list(shots.glob('*.png')))}): {shots}")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in a fresh context (light scheme, nothing stored), 1280 px wide."""
    context = browser.new_context(
        viewport={"width": WIDTH, "height": HEIGHT}, color_scheme="light"
    )
    yield context.new_page()
    context.close()


def _page_path(page: Path) -> str:
    return "" if page.stem == "index" else f"{page.stem}/"


@functools.cache
def _ids(target: Path) -> frozenset[str]:
    """The element ids of a built HTML file."""
    text = target.read_text(encoding="utf-8")
    return frozenset(html.unescape(found) for found in re.findall(r'\sid="([^"]*)"', text))


def _link_problem(href: str, site: Site) -> str | None:
    """What is wrong with a link, if it points into the site and misses."""
    parts = urlsplit(href)
    if not href.startswith(site.url):
        return None
    target = site.root / unquote(parts.path).lstrip("/")
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"link to a missing page: {href}"
    anchor = unquote(parts.fragment)
    if anchor and target.suffix == ".html" and anchor not in _ids(target):
        return f"link to a missing anchor: {href}"
    return None


def _listen(page: Page, site: Site) -> list[str]:
    """Record, from now on, the page's errors and the requests that fail or leave."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"uncaught error: {error}"))

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    def response(answer: Response) -> None:
        if answer.status >= 400:
            problems.append(f"HTTP {answer.status}: {answer.url}")

    def request(sent: Request) -> None:
        if not sent.url.startswith((site.url, "data:", "blob:")):
            problems.append(f"request outside the site: {sent.url}")

    page.on("console", console)
    page.on("response", response)
    page.on("request", request)
    page.on("requestfailed", lambda failed: problems.append(f"request failed: {failed.url}"))
    return problems


def _judge(seen: Seen, site: Site) -> list[str]:
    """Everything wrong with what a page showed."""
    problems = [f"broken image: {src}" for src in seen["images"]]
    # An admonition whose body is not indented shows its marker as text.
    problems += [f"admonition shown as text: {text[:60]!r}" for text in seen["markers"]]
    problems += sorted({p for href in seen["links"] if (p := _link_problem(href, site))})
    for block in seen["blocks"]:
        if not block["highlighted"]:
            problems.append(f"code block without highlighting markup: {block['text']!r}")
        elif block["language"] in HIGHLIGHTED and block["tokens"] == 0:
            problems.append(f"{block['language']} block with no tokens: {block['text']!r}")
    for table in seen["tables"]:
        if table["scrolls"] or table["width"] > seen["contentWidth"]:
            problems.append(
                f"table {table['head']!r} is {table['width']} px wide, the content column "
                f"{seen['contentWidth']} px"
            )
    return problems


def _visit(page: Page, site: Site, path: str, shot: str) -> tuple[Seen, list[str]]:
    """Open a page, let it settle, screenshot it, and say what it shows and what is wrong."""
    problems = _listen(page, site)
    page.goto(site.url + path, wait_until="networkidle")
    seen: Seen = page.evaluate(INSPECT)
    page.screenshot(path=site.shots / f"{shot}.png")
    return seen, problems + _judge(seen, site)


@pytest.mark.parametrize("source", PAGES, ids=lambda source: source.stem)
def test_page_reads_well(source: Path, page: Page, site: Site) -> None:
    seen, problems = _visit(page, site, _page_path(source), source.stem)
    assert problems == [], f"{source.name} in Chromium:\n" + "\n".join(problems)
    # Every fenced block of the page is on it as code (a fence broken by indentation
    # would come out as a paragraph).
    assert len(seen["blocks"]) >= len(blocks_of(source)), seen["blocks"]


def test_search_works_offline(page: Page, site: Site) -> None:
    problems = _listen(page, site)
    page.goto(site.url, wait_until="networkidle")
    page.locator(".md-search__input").click()
    page.keyboard.type("checkpoint")
    results = page.locator(".md-search-result__item a")
    results.first.wait_for(timeout=10_000)
    found = [results.nth(index).get_attribute("href") or "" for index in range(results.count())]
    # The index is served by the site itself; the page about checkpoints is among the hits.
    assert any("/checkpoints/" in href for href in found), found
    page.screenshot(path=site.shots / "search.png")
    assert problems == []


def test_dark_mode_switch_is_remembered(page: Page, site: Site) -> None:
    problems = _listen(page, site)
    page.goto(site.url + "plugins/", wait_until="networkidle")
    scheme = "document.body.getAttribute('data-md-color-scheme')"
    assert page.evaluate(scheme) == "default"
    page.locator('label[title="Switch to dark mode"]').click()
    assert page.evaluate(scheme) == "slate"
    page.goto(site.url + "core/", wait_until="networkidle")
    assert page.evaluate(scheme) == "slate"
    page.screenshot(path=site.shots / "core-dark.png")
    assert problems == []


BROKEN_PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="http://fonts.invalid/font.css"></head><body>
<div class="md-content"><article class="md-content__inner" style="width: 600px">
<a href="../nowhere/">gone</a> <a href="../plugins/#no-such-section">gone</a>
<a href="../plugins/#the-plug-in-protocol">fine</a>
<img src="missing.png" alt="missing">
<pre><code>plain = "not highlighted"</code></pre>
<div class="language-python highlight"><pre><code>tokens = None</code></pre></div>
<table><tr><td style="min-width: 900px">wide</td></tr></table>
<p>!!! note "Unindented"</p>
</article></div>
<script>console.error("boom"); throw new Error("uncaught");</script>
</body></html>"""


def test_the_checks_catch_a_broken_page(page: Page, site: Site) -> None:
    """The checks above can fail: a page with one of each fault is caught on each."""
    (site.root / "broken").mkdir()
    (site.root / "broken" / "index.html").write_text(BROKEN_PAGE, encoding="utf-8")
    _, problems = _visit(page, site, "broken/", "broken")
    expected = [
        "uncaught error: uncaught",
        "console error: boom",
        "request outside the site: http://fonts.invalid/font.css",
        "HTTP 404: " + site.url + "broken/missing.png",
        "broken image: " + site.url + "broken/missing.png",
        "link to a missing page: " + site.url + "nowhere/",
        "link to a missing anchor: " + site.url + "plugins/#no-such-section",
        "code block without highlighting markup: 'plain = \"not highlighted\"'",
        "python block with no tokens: 'tokens = None'",
        "admonition shown as text: '!!! note \"Unindented\"'",
    ]
    for problem in expected:
        assert problem in problems, f"{problem!r} not reported among {problems}"
    assert any(
        re.match(r"table 'wide' is 9\d\d px wide, the content column 600 px", p) for p in problems
    )

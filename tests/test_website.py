"""The built website as a reader sees it, in a real headless browser (Debian's Chromium + ChromeDriver).

Every page loads without console errors, math is typeset by the MathJax served with the site (no
raw LaTeX), every image loads, the launch links point at `repository.url`, and search finds a chapter.
Skipped, with the reason, where no browser is installed (`.ci/run` installs one).
"""

import functools
import http.server
import shutil
import threading
import urllib.parse
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# Chromium here has no network but the loopback: without these it tries Google's hosts at every start.
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,900"]


@pytest.fixture(scope="module")
def site(public):
    """The public website served on localhost: (base URL, html folder, public edition folder)."""
    dest, build, _ = public
    html = dest / "_build" / "html"
    assert build.returncode == 0 and html.is_dir(), build.stdout[-3000:] + build.stderr[-3000:]
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", html, dest
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no headless browser here: install Debian's chromium and chromium-driver (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def _pages(html: Path) -> list[str]:
    pages = ["index.html"] + [str(p.relative_to(html)) for p in sorted((html / "book").glob("*.html"))]
    return pages + [str(p.relative_to(html)) for p in sorted((html / "notebooks").glob("*/*.html"))]


def _open(browser, url: str) -> list[dict]:
    """Load ``url``, wait until MathJax has typeset it, and return the browser's console messages."""
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const ready = window.MathJax && MathJax.startup && MathJax.startup.promise;"
        "(ready ? MathJax.startup.promise : Promise.resolve()).then(() => done(true), () => done(false));")
    return browser.get_log("browser")


def test_every_page_loads_without_errors_typesets_math_and_shows_its_images(site, browser):
    base, html, _ = site
    problems = []
    for page in _pages(html):
        errors = [m["message"] for m in _open(browser, f"{base}/{page}") if m["level"] == "SEVERE"]
        problems += [f"{page}: console error: {message}" for message in errors]
        state = browser.execute_script("""
            return {
              math: document.querySelectorAll('.math, span.math, div.math').length,
              typeset: document.querySelectorAll('mjx-container').length,
              text: (() => {  // the prose a reader sees, without code blocks (code may hold backslashes)
                const root = (document.querySelector('main') || document.body || document.documentElement);
                const copy = root.cloneNode(true);
                copy.querySelectorAll('pre, code, script, mjx-container').forEach(e => e.remove());
                return copy.textContent;
              })(),
              mathjax: Array.from(document.scripts).map(s => s.src).filter(s => s.includes('mathjax')),
              broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
            };""")
        raw = [d for d in ("\\(", "\\[", "$$", "\\frac", "\\mathbb") if d in state["text"]]
        if raw:
            problems.append(f"{page}: raw LaTeX is visible: {raw}")
        if state["math"]:
            if not state["typeset"]:
                problems.append(f"{page}: {state['math']} math elements but nothing typeset by MathJax")
            if any(not src.startswith(base) for src in state["mathjax"]):
                problems.append(f"{page}: MathJax is loaded from outside the site: {state['mathjax']}")
        problems += [f"{page}: image does not load: {src}" for src in state["broken"]]
    assert not problems, "\n".join(problems[:20])


def test_chapter_pages_have_typeset_math(site, browser):
    base, html, _ = site
    chapters = sorted((html / "book").glob("ch*.html"))
    assert chapters
    _open(browser, f"{base}/book/{chapters[-1].name}")
    assert browser.execute_script("return document.querySelectorAll('mjx-container').length") > 0


def test_launch_links_point_at_the_course_repository(site, browser):
    base, html, dest = site
    config = yaml.safe_load((dest / "_config.yml").read_text())
    repository = config["repository"]["url"].rstrip("/")
    owner_repo = urllib.parse.urlparse(repository).path.strip("/")
    branch = config["repository"].get("branch", "main")
    hub = config["launch_buttons"].get("jupyterhub_url", "").rstrip("/")
    notebooks = sorted((dest / "notebooks").glob("*/*.ipynb"))
    assert notebooks
    for notebook in notebooks:
        relative = notebook.relative_to(dest)
        _open(browser, f"{base}/{relative.with_suffix('.html')}")
        links = browser.execute_script("return Array.from(document.querySelectorAll('a')).map(a => a.href)")
        colab = [link for link in links if "colab.research.google.com" in link]
        assert colab == [f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{relative}"], colab
        if hub:
            hub_links = [urllib.parse.urlparse(link) for link in links if link.startswith(hub)]
            assert len(hub_links) == 1, links
            query = urllib.parse.parse_qs(hub_links[0].query)
            assert hub_links[0].path.endswith("/hub/user-redirect/git-pull"), hub_links[0]
            assert query["repo"] == [repository] and query["branch"] == [branch], query
            assert query["urlpath"][0].endswith(str(relative)), query


def test_search_finds_a_chapter(site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, _, _ = site
    _open(browser, f"{base}/search.html?q=LoRA")
    WebDriverWait(browser, 30).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#search-results li a"))
    hits = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#search-results li a")]
    assert any("ch04_lora" in hit for hit in hits), hits

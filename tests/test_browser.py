"""The explorer in a real browser: notebooks/04_explorer.ipynb served by Voila, driven by Playwright under
Debian's chromium (``/usr/bin/chromium``; install it with ``make browser-deps``), against the local
registry. Picking a tag must update the view with the digest the tag resolves to. Every request the page
makes to anything but the loopback Voila server (the lab template links stylesheets from a public CDN) is
aborted and recorded: the page must render and work without them, so the test never touches the internet."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, sync_playwright
from test_widgets import Seed, seed_registry

import ocinb
from ocinb._sync import run_sync
from ocinb.cache import ContentCache
from ocinb.testing import LocalRegistry

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "04_explorer.ipynb"
SCREENSHOT = ROOT / "build" / "screenshots" / "explorer.png"
CHROMIUM = os.environ.get("OCINB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 # beside the route handler below: no name but loopback resolves at all
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"voila exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"voila did not listen on {port} within {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def seed(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seed]:
    client = ocinb.Client(registry.address, docker_config=False, environment=False,
                          cache=ContentCache(tmp_path_factory.mktemp("browser-seed-cache")))
    yield seed_registry(client, f"b{uuid.uuid4().hex[:8]}")
    run_sync(client.aio.aclose())


@pytest.fixture
def voila(registry: LocalRegistry, seed: Seed, tmp_path: Path) -> Iterator[str]:
    """Voila serving the explorer notebook, its parameter cell pointed at the local registry by env vars."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; run `make browser-deps` as root", pytrace=False)
    port = _free_port()
    (tmp_path / "docker").mkdir()
    env = dict(os.environ, OCINB_REGISTRY=registry.address, OCINB_IMAGE=f"{seed.app}:multi",
               OCINB_PLATFORM="linux/amd64", OCINB_CACHE_DIR=str(tmp_path / "cache"),
               DOCKER_CONFIG=str(tmp_path / "docker"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("OCINB_USERNAME", None)
    env.pop("OCINB_PASSWORD", None)
    log = tmp_path / "voila.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voila", str(NOTEBOOK), "--no-browser", f"--port={port}",
             "--Voila.ip=127.0.0.1", "--VoilaConfiguration.show_tracebacks=True",
             "--VoilaConfiguration.file_allowlist=[]"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}/"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # voila and the kernel it started: the session we created
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # a kernel outliving voila


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class OffsiteBlocker:
    """A Playwright route handler: requests to loopback go through, every other one is aborted and kept."""

    def __init__(self) -> None:
        self.allowed: list[str] = []
        self.aborted: list[tuple[str, str]] = []

    def __call__(self, route: Route) -> None:
        request = route.request
        if urlsplit(request.url).hostname in LOOPBACK:
            self.allowed.append(request.url)
            route.continue_()
        else:
            self.aborted.append((request.resource_type, request.url))
            route.abort("blockedbyclient")


def test_offsite_blocker_lets_only_loopback_through() -> None:
    """The handler's decision on its own, so a wrong host test cannot pass the browser test vacuously."""

    class FakeRoute:
        def __init__(self, url: str) -> None:
            self.request = type("Request", (), {"url": url, "resource_type": "stylesheet"})()
            self.outcome = ""

        def continue_(self) -> None:
            self.outcome = "continued"

        def abort(self, error_code: str) -> None:
            self.outcome = error_code

    blocker = OffsiteBlocker()
    urls = {"http://127.0.0.1:8866/voila/static/x.css": "continued", "http://[::1]:1/": "continued",
            "http://localhost:9/a": "continued", "https://cdn.jsdelivr.net/npm/x.css": "blockedbyclient",
            "https://127.0.0.1.example.com/": "blockedbyclient", "http://10.0.0.1/": "blockedbyclient"}
    for url, outcome in urls.items():
        route = FakeRoute(url)
        blocker(route)  # type: ignore[arg-type]
        assert route.outcome == outcome, url
    assert len(blocker.aborted) == 3 and len(blocker.allowed) == 3


def _visible_text(page: Page, text: str, timeout: float) -> None:
    page.locator(".ocinb-explorer").get_by_text(text, exact=False).first.wait_for(state="visible",
                                                                                   timeout=timeout * 1000)


def test_picking_a_tag_updates_the_explorer_view(voila: str, seed: Seed, tmp_path: Path) -> None:
    blocker = OffsiteBlocker()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1100}, service_workers="block")
            context.route("**/*", blocker)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(voila, timeout=90_000, wait_until="domcontentloaded")
            page.locator(".ocinb-explorer").wait_for(state="visible", timeout=90_000)
            _visible_text(page, seed.images["linux/amd64"], 60)
            _visible_text(page, "RUN make amd64", 60)
            assert page.locator(".ocinb-platform-picker select option").all_inner_texts() == [
                "linux/amd64", "linux/arm64/v8"]
            tags = page.locator(".ocinb-tag-select select")
            tags.wait_for(state="visible", timeout=60_000)
            assert "single" in tags.locator("option").all_inner_texts()
            tags.select_option("single")
            _visible_text(page, seed.single_digest, 60)
            platforms = page.locator(".ocinb-platform-picker select option")
            assert [t.replace("\xa0", " ") for t in platforms.all_inner_texts()] == [
                "linux/amd64 (single-platform image)"]
            assert page.locator(".ocinb-layer-picker select option").count() == 1
            _visible_text(page, "RUN echo single", 60)
            assert page.locator(".ocinb-explorer").get_by_text("RUN make amd64").count() == 0
            assert page.locator(".ocinb-tag-input input").input_value() == "single"
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            assert "⚠" not in page.locator(".ocinb-status").inner_text()
            assert errors == [], errors
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
    # All of the above worked with every off-host request aborted; the page did reach the server.
    assert any(urlsplit(url).path.startswith("/voila/") or urlsplit(url).path == "/" for url in blocker.allowed)
    assert all(kind != "document" for kind, _ in blocker.aborted), blocker.aborted
    print(f"aborted off-host requests ({len(blocker.aborted)}):", *blocker.aborted, sep="\n  ")

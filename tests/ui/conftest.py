"""Fixtures for the UI tests: a directory store seeded with the Python client, a real server process serving the
API and the built UI, and Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from .seed import Seed, seed

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
#: Debian's Chromium flags for headless runs in containers, shared with the UI benchmark.
CHROMIUM_ARGS = (REPO / "ui" / "headless-chromium.args").read_text().split()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed(str(tmp_path_factory.mktemp("ui-store") / "mlruns"))


@contextmanager
def running_server(store_root: str, destination: str, static_prefix: str = "") -> Iterator[str]:
    """``mltrail server`` (API and UI) over ``store_root`` in its own process; yields its base URL."""
    port = _free_port()
    cli = [sys.executable, "-c", "from mltrail.cli import main; main()", "server", "--port", str(port)]
    options = ["--backend-store-uri", store_root, "--artifacts-destination", destination]
    proc = subprocess.Popen([*cli, *options, *(["--static-prefix", static_prefix] if static_prefix else [])])
    url = f"http://127.0.0.1:{port}{static_prefix}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"UI test server did not start (exit code {proc.poll()})")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def server(seeded: Seed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(seeded.root, str(tmp_path_factory.mktemp("ui-artifacts"))) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait for the condition; the margin is for a busy 2-core CI machine, not a fixed delay.
    expect.set_options(timeout=20_000)

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server: str) -> Iterator[object]:
    """A fresh 1280×720 page; the test fails on any uncaught page error."""
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="light")
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"errors in the page: {errors}"


@pytest.fixture
def screenshot(page) -> Callable[[str], None]:
    """Save the page as ``test-artifacts/ui/<name>.png`` (look at them to check the pages render right)."""

    def take(name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))

    return take

"""The two implementations of `engines.Driver`: Playwright (Chromium, Firefox) and Selenium (WebKitGTK),
and how each engine is launched from the system's binaries. See `engines.py` for the interface."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from tests.browser.engines import (
    DEFAULT_TIMEOUT_MS,
    ELEMENT_STATE_JS,
    Element,
    OfflineHook,
    minibrowser,
)

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
T = TypeVar("T")


class PlaywrightDriver:
    """A fresh browser context and page per test; selectors, strictness and waiting are Playwright's."""

    def __init__(self, engine: str, base_url: str, context: Any, page: Any) -> None:
        self.engine = engine
        self.base_url = base_url
        self.context = context
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    async def goto(self, path: str) -> None:
        await self.page.goto(path)

    async def reload(self) -> None:
        await self.page.reload()

    async def url(self) -> str:
        return str(self.page.url)

    async def fill(self, selector: str, value: str) -> None:
        await self.page.fill(selector, value, strict=True)

    async def click(self, selector: str) -> None:
        await self.page.click(selector, strict=True)

    async def press(self, selector: str, key: str) -> None:
        await self.page.press(selector, key, strict=True)

    async def query(self, selector: str) -> list[Element]:
        found = await self.page.locator(selector).evaluate_all(ELEMENT_STATE_JS)
        return [Element(e["text"], e["visible"], e["attrs"]) for e in found]

    async def evaluate(self, expression: str) -> Any:
        return await self.page.evaluate(expression)

    async def set_offline(self, offline: bool) -> None:
        await self.context.set_offline(offline)

    async def screenshot(self, path: str) -> None:
        await self.page.screenshot(path=path, full_page=True)

    async def close(self) -> None:
        await self.context.close()


@asynccontextmanager
async def playwright_browser(engine: str) -> AsyncIterator[Any]:
    """One browser process per module and engine, from the system's binary (never a downloaded one)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        if engine == "chromium":
            browser = await playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                                       args=CHROMIUM_ARGS)
        else:
            browser = await playwright.firefox.launch(channel="moz-firefox", headless=True,
                                                      executable_path=shutil.which("firefox-esr"))
        try:
            yield browser
        finally:
            await browser.close()


async def new_playwright_driver(engine: str, browser: Any, base_url: str) -> PlaywrightDriver:
    context = await browser.new_context(base_url=base_url, viewport=VIEWPORT)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    return PlaywrightDriver(engine, base_url, context, await context.new_page())


# --- Selenium (WebKitGTK) ---------------------------------------------------------------------------

#: Playwright's selector meaning, resolved in the page: CSS, optionally followed by `:has-text("…")`
#: filters (on the selector's last compound, the way the seed uses them), or `text=…` (the deepest
#: elements whose text contains it). Text matching is case-insensitive and whitespace-normalised.
QUERY_FN = """
function query(selector) {
const norm = (s) => (s || "").replace(/\\s+/g, " ").trim().toLowerCase();
let found;
const text = /^text=(.*)$/s.exec(selector);
if (text) {
  const needle = norm(text[1].replace(/^(["'])(.*)\\1$/s, "$2"));
  const skip = new Set(["SCRIPT", "STYLE", "TEMPLATE", "NOSCRIPT"]);
  const has = (e) => !skip.has(e.tagName) && norm(e.textContent).includes(needle);
  found = [...document.body.querySelectorAll("*")].filter((e) => has(e) && ![...e.children].some(has));
} else {
  const texts = [];
  const css = selector.replace(/:has-text\\((["'])(.*?)\\1\\)/g, (_, q, t) => { texts.push(norm(t)); return ""; });
  found = [...document.querySelectorAll(css)].filter((e) => texts.every((t) => norm(e.textContent).includes(t)));
}
return found;
}
"""
QUERY_JS = QUERY_FN + "return query(arguments[0]);"
#: Playwright's "receives events" check: the element is scrolled into view and is what is hit at its
#: centre (not something laid over it, nor something else because the layout moved).
HIT_JS = """
const [el] = arguments;
const box = el.getBoundingClientRect();
if (box.top < 0 || box.left < 0 || box.bottom > innerHeight || box.right > innerWidth) {
  el.scrollIntoView({ block: "center", inline: "center" });
}
const r = el.getBoundingClientRect();
const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
return !!hit && (hit === el || el.contains(hit));
"""
STATE_JS = QUERY_FN + f"return ({ELEMENT_STATE_JS})(query(arguments[0]));"


class Xvfb:
    """A private X display for WebKitGTK's window: `-displayfd` picks a free display number."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.display = ""

    def start(self) -> str:
        read, write = os.pipe()
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.stop()
            raise RuntimeError("Xvfb did not report a display")
        self.display = f":{number}"
        return self.display

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class SeleniumDriver:
    """A WebDriver session of WebKitGTK's MiniBrowser. Every blocking WebDriver call runs in a worker
    thread (`asyncio.to_thread`), so the test's event loop (servers the page talks to) keeps running."""

    def __init__(self, engine: str, base_url: str, webdriver: Any, offline: OfflineHook | None,
                 service: Any = None) -> None:
        self.engine = engine
        self.service = service
        self.base_url = base_url
        self.webdriver = webdriver
        self.offline = offline
        self.errors: list[str] = []

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def goto(self, path: str) -> None:
        await self._call(self.webdriver.get, self.base_url + path if path.startswith("/") else path)

    async def reload(self) -> None:
        await self._call(self.webdriver.refresh)

    async def url(self) -> str:
        return str(await self._call(lambda: self.webdriver.current_url))

    async def query(self, selector: str) -> list[Element]:
        found = await self._call(self.webdriver.execute_script, STATE_JS, selector)
        return [Element(e["text"], e["visible"], e["attrs"]) for e in found]

    async def _act(self, selector: str, action: Callable[[Any], None]) -> None:
        """Playwright's actionability, in short: exactly one element (strict), visible, enabled, then act;
        a click that lands on another element or a stale element is retried until the timeout."""
        from selenium.common.exceptions import (
            ElementClickInterceptedException,
            ElementNotInteractableException,
            StaleElementReferenceException,
        )

        def attempt() -> str | None:
            elements = self.webdriver.execute_script(QUERY_JS, selector)
            if len(elements) > 1:
                raise AssertionError(f"strict mode violation: {len(elements)} elements match {selector!r}")
            if not elements:
                return f"no element matches {selector!r}"
            element = elements[0]
            try:
                if not element.is_displayed() or not element.is_enabled():
                    return f"{selector!r} is not visible and enabled"
                action(element)
            except (ElementClickInterceptedException, ElementNotInteractableException,
                    StaleElementReferenceException) as exc:
                return f"{selector!r}: {exc.msg}"
            return None

        deadline = time.monotonic() + DEFAULT_TIMEOUT_MS / 1000
        while True:
            problem = await self._call(attempt)
            if problem is None:
                return
            if time.monotonic() > deadline:
                raise AssertionError(problem)
            await asyncio.sleep(0.1)

    async def fill(self, selector: str, value: str) -> None:
        from selenium.common.exceptions import ElementNotInteractableException

        def fill(element: Any) -> None:
            element.clear()
            element.send_keys(value)
            # Typed keys can be lost on a loaded machine; Playwright's fill sets the value, so check it.
            typed = element.get_property("value")
            if typed != value:
                raise ElementNotInteractableException(f"{selector!r} holds {typed!r} after typing {value!r}")

        await self._act(selector, fill)

    async def click(self, selector: str) -> None:
        from selenium.common.exceptions import ElementClickInterceptedException

        def click(element: Any) -> None:
            if not self.webdriver.execute_script(HIT_JS, element):
                raise ElementClickInterceptedException(f"another element would receive the click on {selector!r}")
            element.click()

        await self._act(selector, click)

    async def press(self, selector: str, key: str) -> None:
        from selenium.webdriver.common.keys import Keys

        await self._act(selector, lambda element: element.send_keys(getattr(Keys, key.upper())))

    async def evaluate(self, expression: str) -> Any:
        return await self._call(self.webdriver.execute_script, f"return ({expression});")

    async def set_offline(self, offline: bool) -> None:
        if self.offline is None:
            raise NotImplementedError("WebKitGTK has no network emulation and this test gave no offline hook")
        await self.offline(offline)

    async def screenshot(self, path: str) -> None:
        await self._call(self.webdriver.save_screenshot, path)

    async def close(self) -> None:
        try:
            await self._call(self.webdriver.quit)
        finally:
            if self.service is not None:
                await self._call(self.service.stop)


def _start_webkit(display: str) -> tuple[Any, Any]:
    """WebKitWebDriver (ours to start and stop) and a session on it. Built from Selenium's parts rather
    than `webdriver.WebKitGTK(...)`, which hands its connection a bare URL and so raises Selenium's own
    DeprecationWarning (warnings are errors in this suite)."""
    from selenium import webdriver
    from selenium.webdriver.remote.client_config import ClientConfig
    from selenium.webdriver.remote.remote_connection import RemoteConnection
    from selenium.webdriver.webkitgtk.options import Options
    from selenium.webdriver.webkitgtk.service import Service

    options = Options()
    options.binary_location = minibrowser()
    options.add_argument("--automation")
    service = Service(executable_path=shutil.which("WebKitWebDriver"), env={**os.environ, "DISPLAY": display})
    service.start()
    try:
        connection = RemoteConnection(client_config=ClientConfig(remote_server_addr=service.service_url))
        driver = webdriver.Remote(command_executor=connection, options=options)
        driver.set_window_size(VIEWPORT["width"], VIEWPORT["height"])
    except Exception:
        service.stop()
        raise
    return driver, service


async def new_selenium_driver(display: str, base_url: str, offline: OfflineHook | None) -> SeleniumDriver:
    driver, service = await asyncio.to_thread(_start_webkit, display)
    return SeleniumDriver("webkit", base_url, driver, offline, service)

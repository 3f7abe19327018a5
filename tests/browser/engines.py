"""One small page-driver interface over the three browser engines, so each spec is written once.

- Chromium: Debian's `chromium`, driven by Playwright (`executable_path`).
- Firefox: Debian's `firefox-esr`, driven by Playwright over WebDriver BiDi (`channel="moz-firefox"`,
  Playwright 1.64.1: 1.65.x fails on `emulation.setMediaFeaturesOverride`).
- WebKit: Debian's WebKitGTK (`WebKitWebDriver` + `MiniBrowser --automation`), driven by Selenium,
  under an Xvfb display the fixtures start themselves. No tool ever downloads a browser of its own.

The interface is the part of Playwright's API the seed specs use (`goto`, `fill`, `click`,
`locator`, `expect(...)`, `context.set_offline`), with Playwright's selector syntax (CSS, the
`:has-text("…")` pseudo-class, `text=…`) and its strict mode: an action or single-element
assertion on a selector matching more than one element fails. On Playwright engines the selectors
and actions are Playwright's own; on Selenium, `tests/browser/engines_selenium.py` resolves them in
the page with the same meaning (case-insensitive, whitespace-normalised text matching).

WebKitGTK has no network emulation: its `set_offline` calls the `offline` hook the test's fixture
gives (the realtime spec drops the Web PubSub side instead).
"""

from __future__ import annotations

import asyncio
import glob
import re
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

ENGINES = ("chromium", "firefox", "webkit")
DEFAULT_TIMEOUT_MS = 20_000  # web-first assertions return as soon as they hold; a loaded CI machine is slow

#: The state of every element a selector matches, computed in the page in one round trip.
ELEMENT_STATE_JS = """(els) => els.map((e) => {
  const rect = e.getBoundingClientRect();
  const style = getComputedStyle(e);
  return {
    text: (e.textContent || "").replace(/\\s+/g, " ").trim(),
    visible: rect.width > 0 && rect.height > 0 && style.visibility !== "hidden",
    attrs: Object.fromEntries([...e.attributes].map((a) => [a.name, a.value])),
  };
})"""

OfflineHook = Callable[[bool], Awaitable[None]]


@dataclass(frozen=True)
class Element:
    text: str
    visible: bool
    attrs: dict[str, str]


class Driver(Protocol):
    """What a spec may do with a page; implemented once per automation library."""

    engine: str
    base_url: str

    async def goto(self, path: str) -> None: ...
    async def reload(self) -> None: ...
    async def url(self) -> str: ...
    async def fill(self, selector: str, value: str) -> None: ...
    async def click(self, selector: str) -> None: ...
    async def press(self, selector: str, key: str) -> None: ...
    async def query(self, selector: str) -> list[Element]: ...
    async def evaluate(self, expression: str) -> Any: ...
    async def set_offline(self, offline: bool) -> None: ...
    async def screenshot(self, path: str) -> None: ...
    async def close(self) -> None: ...


def missing(engine: str) -> str | None:
    """Why `engine` cannot run on this machine (a visible skip reason), or None when it can."""
    if engine == "chromium":
        if not shutil.which("chromium"):
            return "no Chromium (`chromium` on PATH): install it with `apt-get install -y chromium`"
    elif engine == "firefox":
        if not shutil.which("firefox-esr"):
            return "no Firefox (`firefox-esr` on PATH): install it with `apt-get install -y firefox-esr`"
    elif engine == "webkit":
        if not shutil.which("WebKitWebDriver"):
            return "no WebKitGTK driver (`WebKitWebDriver`): install it with `apt-get install -y webkit2gtk-driver`"
        if not minibrowser():
            return "no WebKitGTK MiniBrowser: install it with `apt-get install -y webkit2gtk-driver`"
        if not shutil.which("Xvfb"):
            return "no Xvfb for WebKitGTK's window: install it with `apt-get install -y xvfb`"
    else:
        raise ValueError(f"unknown engine {engine!r}")
    return None


def minibrowser() -> str | None:
    found = sorted(glob.glob("/usr/lib/*/webkit2gtk-4.*/MiniBrowser"))
    return found[-1] if found else None


class Locator:
    """A selector on a page, resolved anew at every check (as Playwright's locators are)."""

    def __init__(self, page: Page, selector: str) -> None:
        self.page = page
        self.selector = selector

    async def count(self) -> int:
        return len(await self.page.driver.query(self.selector))

    async def click(self) -> None:
        await self.page.driver.click(self.selector)


class Page:
    """The spec's `page`: Playwright's method names, whatever drives the engine."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    @property
    def engine(self) -> str:
        return self.driver.engine

    def locator(self, selector: str) -> Locator:
        return Locator(self, selector)

    async def goto(self, path: str) -> None:
        await self.driver.goto(path)

    async def reload(self) -> None:
        await self.driver.reload()

    async def fill(self, selector: str, value: str) -> None:
        await self.driver.fill(selector, value)

    async def click(self, selector: str) -> None:
        await self.driver.click(selector)

    async def press(self, selector: str, key: str) -> None:
        await self.driver.press(selector, key)

    async def evaluate(self, expression: str) -> Any:
        return await self.driver.evaluate(expression)

    async def screenshot(self, path: str) -> None:
        await self.driver.screenshot(path)

    async def url(self) -> str:
        return await self.driver.url()


class Context:
    """The spec's `context`: only what the seed uses of it (going offline and back)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    async def set_offline(self, offline: bool) -> None:
        await self.driver.set_offline(offline)


class Expectation:
    """`expect(target)`: polls until the condition holds or the timeout passes (Playwright's web-first
    assertions); single-element conditions are strict."""

    def __init__(self, target: Page | Locator, *, negate: bool = False) -> None:
        self.target = target
        self.negate = negate

    @property
    def not_(self) -> Expectation:
        return Expectation(self.target, negate=not self.negate)

    async def _poll(self, check: Callable[[], Awaitable[tuple[bool, str]]], timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or DEFAULT_TIMEOUT_MS) / 1000
        while True:
            ok, seen = await check()
            if ok != self.negate:
                return
            if loop.time() > deadline:
                what = self.target.selector if isinstance(self.target, Locator) else "page"
                page = self.target.page if isinstance(self.target, Locator) else self.target
                try:
                    shown = await page.evaluate("document.body.innerText.slice(0, 400)")
                except Exception as exc:  # the message matters more than the page text
                    shown = f"(page text unavailable: {exc})"
                raise AssertionError(f"expect({what}){' not' if self.negate else ''}: {seen}\npage shows: {shown!r}")
            await asyncio.sleep(0.1)

    def _locator(self) -> Locator:
        assert isinstance(self.target, Locator), "this assertion needs a locator"
        return self.target

    async def _one(self) -> tuple[Element | None, str]:
        locator = self._locator()
        found = await locator.page.driver.query(locator.selector)
        if len(found) > 1:
            return None, f"strict mode violation: {len(found)} elements match {locator.selector!r}"
        if not found:
            return None, f"no element matches {locator.selector!r}"
        return found[0], ""

    async def to_have_url(self, expected: str | re.Pattern[str], timeout: float | None = None) -> None:
        assert isinstance(self.target, Page)
        page = self.target

        async def check() -> tuple[bool, str]:
            url = await page.url()
            if isinstance(expected, str):
                want = page.driver.base_url + expected if expected.startswith("/") else expected
                return url == want, f"url is {url!r}, expected {want!r}"
            return expected.search(url) is not None, f"url is {url!r}, expected to match {expected.pattern!r}"

        await self._poll(check, timeout)

    async def to_have_count(self, count: int, timeout: float | None = None) -> None:
        locator = self._locator()

        async def check() -> tuple[bool, str]:
            n = len(await locator.page.driver.query(locator.selector))
            return n == count, f"{n} elements, expected {count}"

        await self._poll(check, timeout)

    async def to_be_visible(self, timeout: float | None = None) -> None:
        async def check() -> tuple[bool, str]:
            element, problem = await self._one()
            if element is None:
                return False, problem
            return element.visible, "the element is not visible"

        await self._poll(check, timeout)

    async def to_have_text(self, expected: str | re.Pattern[str] | list[str], timeout: float | None = None) -> None:
        locator = self._locator()

        async def check() -> tuple[bool, str]:
            if isinstance(expected, list):
                texts = [e.text for e in await locator.page.driver.query(locator.selector)]
                return texts == expected, f"texts are {texts}, expected {expected}"
            element, problem = await self._one()
            if element is None:
                return False, problem
            if isinstance(expected, str):
                return element.text == expected, f"text is {element.text!r}, expected {expected!r}"
            return expected.search(element.text) is not None, f"text is {element.text!r}"

        await self._poll(check, timeout)

    async def to_contain_text(self, expected: str, timeout: float | None = None) -> None:
        async def check() -> tuple[bool, str]:
            element, problem = await self._one()
            if element is None:
                return False, problem
            return expected in element.text, f"text is {element.text[:300]!r}, expected to contain {expected!r}"

        await self._poll(check, timeout)

    async def to_have_attribute(self, name: str, value: str, timeout: float | None = None) -> None:
        async def check() -> tuple[bool, str]:
            element, problem = await self._one()
            if element is None:
                return False, problem
            return element.attrs.get(name) == value, f"{name}={element.attrs.get(name)!r}, expected {value!r}"

        await self._poll(check, timeout)


def expect(target: Page | Locator) -> Expectation:
    return Expectation(target)

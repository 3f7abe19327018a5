"""The page-driver interface means the same on every engine: Playwright's selector syntax and strict
mode on Selenium too, and an absent engine is a skip with the reason, never a silent pass."""

from __future__ import annotations

import pytest

from tests.browser.engines import Page, expect, missing

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-seed")]


@pytest.mark.parametrize(("engine_name", "package"), [
    ("chromium", "chromium"), ("firefox", "firefox-esr"), ("webkit", "webkit2gtk-driver")])
def test_an_engine_whose_binary_is_absent_names_the_package_to_install(monkeypatch, engine_name, package):
    monkeypatch.setenv("PATH", "/nonexistent")
    reason = missing(engine_name)
    assert reason is not None and f"apt-get install -y {package}" in reason


async def test_selectors_and_strict_mode_mean_the_same_on_every_engine(driver):
    page = Page(driver)
    await page.goto("/login")
    await expect(page.locator('button:has-text("sign IN")')).to_have_count(1)  # case-insensitive, substring
    await expect(page.locator("text=Create a company")).to_have_count(1)  # the deepest element with the text
    await expect(page.locator("text=create a COMPANY")).to_have_text("Create a company")
    await expect(page.locator('button:has-text("Nothing like this")')).to_have_count(0)
    await expect(page.locator("form input")).to_have_count(2)
    with pytest.raises(Exception, match="strict mode violation"):
        await page.fill("form input", "two fields match")
    with pytest.raises(AssertionError, match="strict mode violation"):
        await expect(page.locator("form input")).to_be_visible(timeout=500)

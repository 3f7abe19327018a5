"""The seed's `e2e/auth.spec.ts`, ported: "Authentication" — "should login successfully",
"should show error on invalid credentials", "should logout". Same steps, selectors and texts; run on
Chromium, Firefox and WebKit (the `engine` parameter of ./conftest.py)."""

from __future__ import annotations

import pytest

from tests.browser.engines import expect

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-seed")]


async def test_should_login_successfully(page, account):
    await page.goto("/login")
    await page.fill('input[name="email"]', account.email)
    await page.fill('input[name="password"]', account.password)
    await page.click('button[type="submit"]')
    await expect(page).to_have_url("/dashboard")
    await expect(page.locator("h1")).to_contain_text("Welcome")


async def test_should_show_error_on_invalid_credentials(page, account):
    await page.goto("/login")
    await page.fill('input[name="email"]', account.email)
    await page.fill('input[name="password"]', "wrongpassword")
    await page.click('button[type="submit"]')
    await expect(page.locator("text=Invalid credentials")).to_be_visible()


async def test_should_logout(page, logged_in):
    await page.click('[data-testid="user-menu"]')
    await page.click("text=Logout")
    await expect(page).to_have_url("/login")

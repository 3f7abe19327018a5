"""Fixtures of the ported seed specs: the spec's `page` and `context` on one browser engine at a time
(the `driver` of ../conftest.py, parametrized by engine: chromium, firefox, webkit), and the data the
seed assumed: a logged-in user (`logged_in`) and a team with tasks in several states (`seeded_team`,
in ../conftest.py)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Account
from tests.browser.engines import Context, Driver, Page, expect


@pytest.fixture
def page(driver: Driver) -> Page:
    return Page(driver)


@pytest.fixture
def context(driver: Driver) -> Context:
    return Context(driver)


async def login(page: Page, account: Account) -> None:
    """The seed's `beforeEach`: sign in through the form."""
    await page.goto("/login")
    await page.fill('input[name="email"]', account.email)
    await page.fill('input[name="password"]', account.password)
    await page.click('button[type="submit"]')
    await expect(page).to_have_url("/dashboard")


@pytest.fixture
async def logged_in(page: Page, account: Account) -> Account:
    await login(page, account)
    return account

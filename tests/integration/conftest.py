from __future__ import annotations

import uuid

import pytest

from shared.db.database import Database
from shared.domain.models import Principal, RegisterRequest, TeamCreate
from shared.services import Services


@pytest.fixture
async def services(pool) -> Services:
    return Services.build(Database(pool))


@pytest.fixture
def make_company(services: Services):
    async def make(name: str = "Acme") -> Principal:
        user = await services.auth.register(
            RegisterRequest(company_name=name, email=f"{uuid.uuid4().hex[:10]}@example.com",
                            password="correct horse battery", full_name="Ada Admin")
        )
        return Principal(user_id=user.id, company_id=user.company_id, role=user.role)

    return make


@pytest.fixture
async def principal(make_company) -> Principal:
    return await make_company()


@pytest.fixture
def make_team(services: Services, principal: Principal):
    async def make(goal: str = "Build a web scraper for product prices", **kwargs):
        return await services.teams.create(principal, TeamCreate(goal=goal, **kwargs))

    return make

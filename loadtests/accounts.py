"""The load-test logins the seeder creates and the scenarios use: derived, never stored in a file."""

from __future__ import annotations

import os
from dataclasses import dataclass

#: One password for every load-test user, hashed once by the seeder (argon2id is slow on purpose).
PASSWORD = "ghost-pirates-load-test"
EMAIL_DOMAIN = "load.ghostpirates.dev"


def user_email(company: int, user: int) -> str:
    return f"load-c{company:04d}-u{user:03d}@{EMAIL_DOMAIN}"


@dataclass(frozen=True)
class Population:
    """How many companies and users per company a seeded database has."""

    companies: int
    users_per_company: int

    def emails(self) -> list[str]:
        """Users interleaved across companies, so N virtual users spread over every company."""
        return [user_email(c, u) for u in range(self.users_per_company) for c in range(self.companies)]

    def to_env(self) -> dict[str, str]:
        return {"GP_LOAD_COMPANIES": str(self.companies), "GP_LOAD_USERS_PER_COMPANY": str(self.users_per_company)}

    @classmethod
    def from_env(cls) -> Population:
        return cls(int(os.environ.get("GP_LOAD_COMPANIES", "10")),
                   int(os.environ.get("GP_LOAD_USERS_PER_COMPANY", "10")))

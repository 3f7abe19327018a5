"""The password rule for new passwords: at least 10 characters and not a common password.

Following NIST SP 800-63B §5.1.1.2: a minimum length, no composition rules, and a check against a
list of commonly used passwords. The list is zxcvbn's (PyPI `zxcvbn`, the 30 000 most frequent
passwords of public leaks, the list Dropbox's estimator ranks with). A password is refused when it
is on the list once lower-cased, or once the digits and symbols around a listed word are taken off
("Password123!", "2024dragon"), which is how people stretch a common password to a length rule.
"""

from __future__ import annotations

import functools
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

__all__ = ["MIN_PASSWORD_LENGTH", "common_passwords", "password_problem"]

MIN_PASSWORD_LENGTH = 10
_DECORATION = "0123456789!@#$%^&*()-_=+[]{};:'\",.<>/?\\|`~ "


@functools.cache
def common_passwords() -> frozenset[str]:
    """The list, loaded on first use (registration and password change only, never at start-up).

    zxcvbn keeps all its word lists in one module, and importing the package builds ranked
    dictionaries of all of them (~14 MB kept). So the list module's file is run on its own, outside
    the package, and only the password list is kept (~2 MB).
    """
    source = Path(str(distribution("zxcvbn").locate_file("zxcvbn/frequency_lists.py")))
    namespace: dict[str, Any] = {}
    exec(compile(source.read_bytes(), str(source), "exec"), namespace)  # noqa: S102 - the installed package's data
    return frozenset(namespace["FREQUENCY_LISTS"]["passwords"])


def password_problem(password: str) -> str | None:
    """Why `password` may not be used, or None when it may."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(set(password)) == 1:
        return "must not be one character repeated"
    lowered = password.lower()
    listed = common_passwords()
    if lowered in listed or lowered.strip(_DECORATION) in listed:
        return "is too common (it is on a list of leaked passwords); choose another"
    return None

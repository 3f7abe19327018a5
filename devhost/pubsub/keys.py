"""The emulator's access key, kept in `<data-dir>/pubsub.key` so that a standalone emulator and the
devhosts that point at it (`serve --pubsub-url`) sign and check tokens with the same key."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_FILE = "pubsub.key"


def load_or_create_access_key(data_dir: Path) -> str:
    """The key in `<data_dir>/pubsub.key`; a new random one (mode 0600) when there is none yet."""
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    # O_EXCL: when two processes start together, one writes and the other reads the winner's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key


def read_access_key(data_dir: Path) -> str | None:
    """The key in `<data_dir>/pubsub.key`, or None when no emulator has created one there."""
    path = data_dir / KEY_FILE
    return path.read_text(encoding="utf-8").strip() if path.exists() else None

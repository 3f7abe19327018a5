"""`python -m devhost serve|run ...`."""

from __future__ import annotations

import sys

from devhost.cli import main

sys.exit(main())

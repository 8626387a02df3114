"""What every command shares: how a user's mistake ends it."""

from __future__ import annotations

import sys
from typing import NoReturn


def fail(error: Exception | str) -> NoReturn:
    """Ends the command on a user's mistake (a bad file, a missing model, an unreachable
    server): one line on stderr naming what is wrong, exit status 2, no traceback."""
    sys.stderr.write(f"error: {error}\n")
    sys.exit(2)

"""What every command shares: how a user's mistake ends it."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def fail(error: Exception | str) -> NoReturn:
    """Ends the command on a user's mistake (a bad file, a missing model, an unreachable
    server): one line on stderr naming what is wrong, exit status 2, no traceback."""
    sys.stderr.write(f"error: {error}\n")
    sys.exit(2)


def require_records_folder(flag: str) -> None:
    """Registers a validator: --<flag> must name a records folder (make records' output), so a
    wrong path stops at parse time with a message naming the flag."""
    from absl import flags

    flags.register_validator(flag, lambda p: os.path.isfile(os.path.join(p, "manifest.json")),
                             message=f"--{flag} must be a records folder (with manifest.json; "
                             f"make records)")


def parse_scales(values: list[str], flag: str, upper: float | None = None) -> tuple[float, ...]:
    """Upscaling factors from a list flag ("3", "1.5,2,2.5"): numbers > 1 (at most `upper`)
    that the protocol can crop for (imaging.scale_ratio). Raises flags.ValidationError naming
    the flag and the value."""
    from absl import flags

    from srcnn_tf import imaging

    out = []
    for v in values:
        try:
            s = float(v)
        except ValueError:
            raise flags.ValidationError(f"--{flag}: {v!r} is not a number") from None
        try:
            imaging.scale_ratio(s)
        except ValueError as e:
            raise flags.ValidationError(f"--{flag}: {e}") from None
        if upper is not None and s > upper:
            raise flags.ValidationError(f"--{flag}: {v} is outside (1, {upper:g}]")
        out.append(s)
    if len(set(out)) != len(out):
        raise flags.ValidationError(f"--{flag}: {','.join(values)} lists a factor twice")
    return imaging.scale_list(out)

"""The SRCNN architecture as data: filter sizes, widths, padding, the scale planes.

No framework imports, so the Keras builder (model.py) and the JAX trainer (jax_train.py) read
one definition.
"""

from __future__ import annotations

import dataclasses

PRESETS = {"9-1-5": (9, 1, 5), "9-3-5": (9, 3, 5), "9-5-5": (9, 5, 5)}
SCALE_PLANES = 2


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture. `preset` names the filter sizes (f1-f2-f3); n1/n2 are the filter counts."""

    preset: str = "9-5-5"
    n1: int = 64
    n2: int = 32
    channels: int = 1
    padding: str = "valid"  # "valid" (paper) or "same"
    init: str = "he"  # "he" or "gaussian" (paper: N(0, 1e-3), zero bias)
    # Multi-scale models: the input also carries SCALE_PLANES constant planes (known, scale)
    # = (1, s) when the factor s is known and (0, 0) when it is not (see with_scale).
    scale_input: bool = False

    @property
    def in_channels(self) -> int:
        return self.channels + (SCALE_PLANES if self.scale_input else 0)

    @property
    def filters(self) -> tuple[int, int, int]:
        return parse_preset(self.preset)

    @property
    def border(self) -> int:
        """Receptive-field radius: pixels lost per side by 'valid' convolutions (6 for 9-1-5)."""
        return sum(f - 1 for f in self.filters) // 2

    def output_size(self, input_size: int) -> int:
        return input_size - 2 * self.border if self.padding == "valid" else input_size

    def validate(self) -> None:
        parse_preset(self.preset)
        if self.padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {self.padding!r}")
        if self.init not in ("he", "gaussian"):
            raise ValueError(f"init must be 'he' or 'gaussian', got {self.init!r}")
        if min(self.n1, self.n2, self.channels) < 1:
            raise ValueError(f"n1, n2, channels must be >= 1, got {self.n1}, {self.n2}, "
                             f"{self.channels}")


def parse_preset(preset: str) -> tuple[int, int, int]:
    """'9-5-5' -> (9, 5, 5); any odd sizes 'f1-f2-f3' are accepted."""
    if preset in PRESETS:
        return PRESETS[preset]
    try:
        sizes = tuple(int(s) for s in preset.split("-"))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or any(s < 1 or s % 2 == 0 for s in sizes):
        raise ValueError(f"model preset must be 'f1-f2-f3' with odd sizes (e.g. 9-5-5), "
                         f"got {preset!r}")
    return sizes  # type: ignore[return-value]

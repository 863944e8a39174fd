"""The paper's published model costs (Tables 4 and 5), for side-by-side comparison.

Table 4 is Exp1 with 8 packets of 100 bytes (input length 800), Table 5 is Exp2 with
1 packet (input length 100). FLOPs there follow Eq. (5), i.e. multiply-accumulates.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperCost:
    """One model's published size and cost at one input length."""

    params: int
    macs: int


# model           input length: (parameters, multiply-accumulates)
PAPER_COSTS: dict[str, dict[int, PaperCost]] = {
    "unet1d": {800: PaperCost(716_000, 141_000_000), 100: PaperCost(715_000, 25_000_000)},
    "unet1d_light": {800: PaperCost(245_000, 56_000_000), 100: PaperCost(243_000, 7_000_000)},
    "mobilenet1d": {800: PaperCost(3_178_000, 258_000_000), 100: PaperCost(2_434_000, 46_000_000)},
}

"""Evaluation protocols: how samples are masked, deduplicated and split.

Two protocols, used by ``botunet sweep`` and ``botunet run``:

- ``paper``: the paper's setting (section 4.1): raw bytes with nothing masked, every
  sample kept, and a random stratified 3:1:1 split. Sessions of one capture land in
  every split, so a model can score well by remembering addresses and capture quirks.
- ``strict``: what a deployment would see: addresses and other identifying fields
  masked, identical vectors dropped from later splits, and each capture wholly in one
  split, so the test set holds only captures never seen in training.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from botunet.config import SampleConfig, SplitConfig
from botunet.errors import ConfigError


@dataclass(frozen=True)
class Protocol:
    """A named evaluation protocol.

    Args:
        name: the name used on the command line.
        mask: SampleConfig.mask for every sample.
        split: SplitConfig.mode.
        dedup: SplitConfig.dedup.
        description: one line for reports.
    """

    name: str
    mask: str
    split: str
    dedup: bool
    description: str


PROTOCOLS: dict[str, Protocol] = {
    "paper": Protocol(
        name="paper",
        mask="none",
        split="random",
        dedup=False,
        description="random 3:1:1 split, nothing masked, duplicates kept (the paper's setting)",
    ),
    "strict": Protocol(
        name="strict",
        mask="strict",
        split="capture",
        dedup=True,
        description="split by capture, identifying fields masked, duplicates dropped",
    ),
}


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; ConfigError naming the known ones otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        known = ", ".join(sorted(PROTOCOLS))
        raise ConfigError(f"unknown protocol {name!r}; available: {known}") from None


def apply_protocol(
    name: str, sample: SampleConfig, split: SplitConfig
) -> tuple[SampleConfig, SplitConfig]:
    """Copies of ``sample`` and ``split`` with the protocol's mask, split mode and dedup."""
    protocol = get_protocol(name)
    sample = dataclasses.replace(sample, mask=protocol.mask)
    split = dataclasses.replace(split, mode=protocol.split, dedup=protocol.dedup)
    return sample, split


def protocol_configs(
    name: str,
    n_packets: int,
    start: str,
    *,
    bytes_per_packet: int | None = None,
    max_per_capture: int | None = None,
    seed: int = 0,
) -> tuple[SampleConfig, SplitConfig]:
    """The sample and split configs of one grid cell under protocol ``name``.

    Fields not named here keep their defaults from botunet.config.
    """
    sample = SampleConfig(n_packets=n_packets, start=start)
    if bytes_per_packet is not None:
        sample = dataclasses.replace(sample, bytes_per_packet=bytes_per_packet)
    split = SplitConfig(max_per_capture=max_per_capture, seed=seed)
    return apply_protocol(name, sample, split)

"""Experiments: the paper's evaluation protocols and the grid sweep over N, start mode and model."""

from botunet.experiments.protocols import PROTOCOLS, Protocol, apply_protocol, protocol_configs

__all__ = ["PROTOCOLS", "Protocol", "apply_protocol", "protocol_configs"]

"""Labels of sessions and where they came from."""

from __future__ import annotations

from enum import IntEnum


class Label(IntEnum):
    """Class of a session; the integer is the model's target."""

    BENIGN = 0
    BOTNET = 1

    @property
    def display_name(self) -> str:
        """Lower-case name used in folders, manifests and dataset tables."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Label:
        """A label from "benign"/"botnet" (any case) or "0"/"1"; ValueError otherwise."""
        value = text.strip().lower()
        for label in cls:
            if value in (label.display_name, str(int(label))):
                return label
        raise ValueError(f"label must be benign or botnet, got {text!r}")


LABEL_NAMES = tuple(label.display_name for label in Label)

# Where a session's label came from, in the order they take precedence.
LABEL_SOURCES = ("folder", "manifest", "sidecar", "ip-list")

UNKNOWN_FAMILY = "unknown"

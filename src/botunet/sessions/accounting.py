"""Packet accounting: every record read is either in a session or skipped for a reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botunet.pcap.decode import SKIP_REASONS

__all__ = ["Accounting", "SKIP_REASONS", "SKIP_DESCRIPTIONS"]

# What each skip reason means, for summaries and the README.
SKIP_DESCRIPTIONS = {
    "non_ip": "not IP (ARP, STP, LLDP, CDP, ...)",
    "truncated_link": "cut inside its link-layer header",
    "truncated_ip": "cut inside its IP header or IPv6 extension headers",
    "fragment": "IP fragment after the first (no transport header)",
    "unsupported_link": "link type not decoded (or pcapng interface not described)",
    "unsupported_ip": "IP version not 4/6 or a malformed IP header",
    "truncated_l4": "TCP/UDP packet cut before its ports",
    "after_close": "TCP packet after its session closed (FIN both ways or RST) and the close "
    "grace period ended",
}


@dataclass
class Accounting:
    """Counts over one run (one or more captures).

    The invariant ``packets_read == packets_in_sessions + sum(skipped.values())``
    holds after every finished capture (``check``). ``peak_live_sessions`` is the most
    sessions held open at once in any one file: what the meter's memory follows.
    """

    files: int = 0
    packets_read: int = 0
    packets_in_sessions: int = 0
    sessions: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    cut_files: int = 0
    peak_live_sessions: int = 0

    @property
    def packets_skipped(self) -> int:
        return sum(self.skipped.values())

    def check(self) -> bool:
        """Whether every packet read is accounted for."""
        return self.packets_read == self.packets_in_sessions + self.packets_skipped

    def add_file(self, stats: dict[str, Any], *, cut: bool = False) -> None:
        """Add the counts of one finished capture (the meter's stats dict)."""
        self.files += 1
        self.cut_files += int(cut)
        self.packets_read += stats["packets_read"]
        self.packets_in_sessions += stats["packets_in_sessions"]
        self.sessions += stats["sessions"]
        self.peak_live_sessions = max(self.peak_live_sessions, stats["peak_live_sessions"])
        for reason, count in stats["skipped"].items():
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def merge(self, other: Accounting) -> None:
        """Add another run's counts to this one."""
        self.files += other.files
        self.cut_files += other.cut_files
        self.packets_read += other.packets_read
        self.packets_in_sessions += other.packets_in_sessions
        self.sessions += other.sessions
        self.peak_live_sessions = max(self.peak_live_sessions, other.peak_live_sessions)
        for reason, count in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, skip reasons in their fixed order."""
        ordered = {r: self.skipped[r] for r in SKIP_REASONS if r in self.skipped}
        ordered.update({r: n for r, n in self.skipped.items() if r not in ordered})
        return {
            "files": self.files,
            "packets_read": self.packets_read,
            "packets_in_sessions": self.packets_in_sessions,
            "packets_skipped": self.packets_skipped,
            "skipped": ordered,
            "sessions": self.sessions,
            "cut_files": self.cut_files,
            "peak_live_sessions": self.peak_live_sessions,
        }

    def describe_skips(self) -> str:
        """The skipped counts as one short phrase: "fragment 2, non_ip 7"."""
        parts = [f"{r} {self.skipped[r]}" for r in SKIP_REASONS if self.skipped.get(r)]
        return ", ".join(parts) if parts else "none"

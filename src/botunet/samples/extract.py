"""Sessions to byte vectors: N packets x L bytes from the IP header, zero-padded, masked.

The paper's input (section 4.1): from a session's start packet take N consecutive
packets, cut or pad each to L bytes, and concatenate them into one vector of N*L bytes;
a session with fewer packets is padded with zeros. The start packet is the session's
first packet ("first", the paper's Exp1) or its first packet with transport payload
("payload", Exp2; the first packet when no packet carries payload). Packets are placed
by ``Packet.index``: the packet with index ``start + k`` fills slot k.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from botunet.config import SampleConfig
from botunet.samples.mask import mask_windows
from botunet.sessions.session import Packet, Session


def start_index(packets: Sequence[Packet], start: str) -> int:
    """Index of the packet a sample starts at: the first one, or the first with payload."""
    if not packets:
        return 0
    if start == "payload":
        for packet in packets:
            if packet.payload_length > 0:
                return packet.index
    return packets[0].index


def extract_batch(
    sessions: Sequence[Session], config: SampleConfig, out: np.ndarray | None = None
) -> np.ndarray:
    """Byte vectors of many sessions: uint8 (B, N*L), written into ``out`` when given.

    Every row of ``out`` is overwritten. Windows are gathered into one (P, L) array,
    masked together (see botunet.samples.mask) and scattered into their slots.
    """
    return extract_batch_positions(sessions, config, out)[0]


def extract_batch_positions(
    sessions: Sequence[Session], config: SampleConfig, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As extract_batch, also returning each session's start index and packets placed.

    Returns:
        vectors uint8 (B, N*L); start indices int64 (B,); packets in each sample
        int64 (B,).
    """
    n, length = config.n_packets, config.bytes_per_packet
    if out is None:
        out = np.zeros((len(sessions), n * length), dtype=np.uint8)
    else:
        if out.shape != (len(sessions), n * length) or out.dtype != np.uint8:
            raise ValueError(
                f"out must be uint8 of shape {(len(sessions), n * length)}, "
                f"got {out.dtype} {out.shape}"
            )
        out.fill(0)

    starts = np.zeros(len(sessions), dtype=np.int64)
    used = np.zeros(len(sessions), dtype=np.int64)
    rows: list[int] = []
    slots: list[int] = []
    windows: list[bytes] = []
    l4_offsets: list[int] = []
    protocols: list[int] = []
    pad = b"\0" * length
    for row, session in enumerate(sessions):
        first = start_index(session.packets, config.start)
        taken = 0
        for packet in session.packets:
            slot = packet.index - first
            if 0 <= slot < n:
                rows.append(row)
                slots.append(slot)
                data = packet.data
                windows.append(data[:length] if len(data) >= length else data + pad[len(data) :])
                l4_offsets.append(packet.l4_offset)
                taken += 1
        protocols.extend([session.protocol] * taken)
        starts[row] = first
        used[row] = taken
    if windows:
        block = np.frombuffer(bytearray().join(windows), dtype=np.uint8).reshape(-1, length)
        mask_windows(block, np.array(protocols), np.array(l4_offsets), config.mask)
        out.reshape(len(sessions), n, length)[rows, slots] = block
    return out, starts, used


def extract_sample(session: Session, config: SampleConfig) -> np.ndarray:
    """The byte vector of one session: uint8 (N*L,)."""
    return extract_batch([session], config)[0]


def packets_in_sample(session: Session, config: SampleConfig) -> int:
    """How many of the session's kept packets land in its sample's N slots."""
    first = start_index(session.packets, config.start)
    return sum(0 <= p.index - first < config.n_packets for p in session.packets)

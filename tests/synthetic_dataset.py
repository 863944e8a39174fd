"""A small, learnable dataset folder in the documented format, for training tests.

Botnet vectors carry high bytes in their first ten positions and benign ones low
bytes, under uniform noise elsewhere, so a tiny model separates them in an epoch or two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from botunet.config import SampleConfig, SessionConfig, SplitConfig, to_dict
from botunet.datasets.store import FORMAT_VERSION, content_hash, write_dataset

# family -> (label, samples)
FAMILIES = {"neris": (1, 36), "rbot": (1, 24), "web": (0, 80), "dns": (0, 20)}
SPLIT_SHARES = (0.6, 0.2, 0.2)

# a tiny unet1d_light: two levels of 4 and 8 channels
TINY_MODEL = "unet1d_light"
TINY_KWARGS = {"widths": [4, 8]}


def write_synthetic_dataset(
    out_dir: Path,
    *,
    n_packets: int = 2,
    bytes_per_packet: int = 20,
    start: str = "first",
    seed: int = 0,
    scale: int = 1,
) -> Path:
    """Write the dataset (``scale`` times the samples of FAMILIES) and return its folder."""
    sample = SampleConfig(n_packets=n_packets, bytes_per_packet=bytes_per_packet, start=start)
    rng = np.random.default_rng(seed)
    vectors, labels, families, splits = [], [], [], []
    for family, (label, count) in FAMILIES.items():
        count *= scale
        block = rng.integers(0, 256, size=(count, sample.input_length), dtype=np.uint8)
        low, high = (180, 256) if label == 1 else (0, 90)
        block[:, :10] = rng.integers(low, high, size=(count, 10), dtype=np.uint8)
        vectors.append(block)
        labels += [label] * count
        families += [family] * count
        bounds = np.round(np.cumsum(SPLIT_SHARES) * count).astype(int)
        splits += ["train"] * bounds[0] + ["val"] * (bounds[1] - bounds[0])
        splits += ["test"] * (count - bounds[1])
    vectors_array = np.concatenate(vectors)
    n = len(labels)
    table = pa.table({
        "label": pa.array(labels, pa.int8()),
        "label_name": pa.array(["botnet" if y else "benign" for y in labels]),
        "family": pa.array(families),
        "capture": pa.array([f"{f}.pcap" for f in families]),
        "src_ip": pa.array([f"10.0.{i // 250}.{i % 250 + 1}" for i in range(n)]),
        "src_port": pa.array(rng.integers(1024, 65535, n), pa.int32()),
        "dst_ip": pa.array(["192.0.2.1"] * n),
        "dst_port": pa.array([443] * n, pa.int32()),
        "protocol": pa.array([6] * n, pa.int16()),
        "first_ts": pa.array(np.arange(n, dtype=np.float64)),
        "n_packets": pa.array([n_packets] * n, pa.int64()),
        "split": pa.array(splits),
    })
    info = {
        "format": FORMAT_VERSION,
        "input_length": sample.input_length,
        "config": {
            "sample": to_dict(sample),
            "session": to_dict(sample.session_config(SessionConfig())),
            "split": to_dict(SplitConfig()),
        },
        "counts": {"samples": n},
        "content_hash": content_hash(vectors_array, table),
    }
    return write_dataset(Path(out_dir), vectors_array, table, info)

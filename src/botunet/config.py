"""Stage configurations: frozen dataclasses, the only home of default values.

Each stage takes its config object; the CLI maps flags one-to-one onto fields and
every run writes the resolved configs next to its outputs (``to_dict``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botunet.errors import ConfigError

START_MODES = ("first", "payload")
MASK_LEVELS = ("none", "addresses", "strict")
SPLIT_MODES = ("random", "capture", "host")

T = TypeVar("T")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class SessionConfig:
    """How packets are grouped into sessions.

    Args:
        idle_timeout_s: a session with no packet for this long ends ("idle"). 120 s is
            nfstream's default, which most flow-meter users know.
        active_timeout_s: a session older than this ends ("active") and the next
            packet starts a new one; nfstream's 1800 s default.
        tcp_close: end a TCP session at FIN (both ways) or RST; a SYN on a reused
            5-tuple after that starts a new session.
        close_grace_s: after a FIN close or RST, packets of the same 5-tuple other than
            a new SYN (SYN without ACK) within this many seconds of the close still
            belong to the session; it is handed out when the grace expires (or at a new
            SYN on the 5-tuple, or at the end of the capture) with end_reason "fin" /
            "rst". The last ACK follows the second FIN within one round trip, so 2 s
            covers long paths and a retransmitted FIN or RST. Later packets are
            skipped ("after_close"). 0 hands the session out at the closing packet.
        decode_tunnels: look inside GRE, VXLAN, IP-in-IP and IPv6-in-IP and use the
            inner packet.
        keep_packets: how many packets a session keeps (from its start, and again from
            its first packet with payload); 0 keeps only counters.
        keep_bytes: bytes kept of each kept packet, counted from the IP header.
    """

    idle_timeout_s: float = 120.0
    active_timeout_s: float = 1800.0
    tcp_close: bool = True
    close_grace_s: float = 2.0
    decode_tunnels: bool = False
    keep_packets: int = 0
    keep_bytes: int = 0

    def __post_init__(self) -> None:
        _require(self.idle_timeout_s > 0, f"idle_timeout_s must be > 0, got {self.idle_timeout_s!r}")
        _require(
            self.active_timeout_s > 0,
            f"active_timeout_s must be > 0, got {self.active_timeout_s!r}",
        )
        _require(
            0 <= self.close_grace_s < float("inf"),
            f"close_grace_s must be a finite number >= 0, got {self.close_grace_s!r}",
        )
        _require(
            0 <= self.keep_packets <= 1024,
            f"keep_packets must be in 0..1024, got {self.keep_packets!r}",
        )
        _require(
            0 <= self.keep_bytes <= 65535, f"keep_bytes must be in 0..65535, got {self.keep_bytes!r}"
        )


@dataclass(frozen=True)
class SampleConfig:
    """How a session becomes one byte vector of n_packets * bytes_per_packet.

    Args:
        n_packets: N, packets per sample (the paper sweeps 1..16).
        bytes_per_packet: L, bytes per packet from the IP header (the paper uses 100).
        start: "first" (the paper's Exp1) or "payload" (Exp2: the first packet that
            carries transport payload, falling back to the first packet).
        mask: "none", "addresses" or "strict" (see botunet.samples.mask).
    """

    n_packets: int = 8
    bytes_per_packet: int = 100
    start: str = "first"
    mask: str = "strict"

    def __post_init__(self) -> None:
        _require(1 <= self.n_packets <= 64, f"n_packets must be in 1..64, got {self.n_packets!r}")
        _require(
            20 <= self.bytes_per_packet <= 1500,
            f"bytes_per_packet must be in 20..1500, got {self.bytes_per_packet!r}",
        )
        _require(
            self.start in START_MODES,
            f"start must be one of {', '.join(START_MODES)}, got {self.start!r}",
        )
        _require(
            self.mask in MASK_LEVELS,
            f"mask must be one of {', '.join(MASK_LEVELS)}, got {self.mask!r}",
        )

    @property
    def input_length(self) -> int:
        return self.n_packets * self.bytes_per_packet

    def session_config(self, base: SessionConfig | None = None) -> SessionConfig:
        """The session options with enough packets and bytes kept for this sample."""
        base = base or SessionConfig()
        return dataclasses.replace(
            base,
            keep_packets=max(base.keep_packets, self.n_packets),
            keep_bytes=max(base.keep_bytes, self.bytes_per_packet),
        )


@dataclass(frozen=True)
class SplitConfig:
    """How samples are divided into train / validation / test.

    Args:
        mode: "random" (the paper's stratified 3:1:1), "capture" (each capture wholly
            in one split) or "host" (each internal host wholly in one split).
        ratios: train, validation and test shares.
        dedup: drop a vector from later splits when an identical one is in an earlier
            split; None means on for "capture" and "host", off for "random".
        max_per_capture: keep at most this many sessions of each capture (seeded).
        seed: the one seed of the dataset stage.
    """

    mode: str = "random"
    ratios: tuple[float, float, float] = (0.6, 0.2, 0.2)
    dedup: bool | None = None
    max_per_capture: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _require(
            self.mode in SPLIT_MODES,
            f"split must be one of {', '.join(SPLIT_MODES)}, got {self.mode!r}",
        )
        _require(
            len(self.ratios) == 3 and all(r >= 0 for r in self.ratios) and sum(self.ratios) > 0,
            f"ratios must be three non-negative numbers, got {self.ratios!r}",
        )
        _require(
            self.max_per_capture is None or self.max_per_capture > 0,
            f"max_per_capture must be > 0, got {self.max_per_capture!r}",
        )

    @property
    def dedup_enabled(self) -> bool:
        return self.mode != "random" if self.dedup is None else self.dedup


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; defaults are the paper's (Adam, lr 1e-3, batch 64, 40 epochs)."""

    model: str = "unet1d_light"
    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int | None = 8
    class_weights: bool = True
    seed: int = 0
    threads: int | None = None
    # False: decide at 0.5; True: the threshold that maximises validation F1
    tune_threshold: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs!r}")
        _require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size!r}")
        _require(self.lr > 0, f"lr must be > 0, got {self.lr!r}")
        _require(
            self.patience is None or self.patience >= 1,
            f"patience must be >= 1 or None, got {self.patience!r}",
        )
        _require(
            self.threads is None or self.threads >= 1,
            f"threads must be >= 1 or None, got {self.threads!r}",
        )


@dataclass(frozen=True)
class DetectConfig:
    """Detection settings.

    Args:
        threshold: score at or above which a session is a botnet verdict; None uses
            the model's own threshold.
        batch_size: sessions scored together.
        max_wait_s: longest a ready session waits (in capture time) for its batch.
        backend: "torch" or "onnx".
        threads: CPU threads for inference; None leaves the backend's default (all
            cores), fewer leaves cores to the capture on a busy device.
    """

    threshold: float | None = None
    batch_size: int = 256
    max_wait_s: float = 1.0
    backend: str = "torch"
    threads: int | None = None

    def __post_init__(self) -> None:
        _require(
            self.threshold is None or 0.0 <= self.threshold <= 1.0,
            f"threshold must be in [0, 1], got {self.threshold!r}",
        )
        _require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size!r}")
        _require(self.max_wait_s >= 0, f"max_wait_s must be >= 0, got {self.max_wait_s!r}")
        _require(
            self.backend in ("torch", "onnx"),
            f"backend must be one of torch, onnx, got {self.backend!r}",
        )
        _require(
            self.threads is None or self.threads >= 1,
            f"threads must be >= 1 or None, got {self.threads!r}",
        )


# The paper's models and its values of N (Tables 2 and 3).
PAPER_MODELS = ("unet1d", "unet1d_light", "mobilenet1d")
PAPER_PACKETS = (1, 2, 4, 6, 8, 10, 12, 14, 16)


@dataclass(frozen=True)
class SweepConfig:
    """The grid of ``botunet sweep``: one dataset per (N, start), trained with every model.

    Args:
        packets: values of N.
        starts: start modes ("first" is the paper's Exp1, "payload" its Exp2).
        models: registered model names.
        protocol: "paper" or "strict" (see botunet.experiments.protocols).
        max_per_capture: keep at most this many sessions of each capture (seeded).
        seed: the seed of every split and every training run of the grid.
    """

    packets: tuple[int, ...] = PAPER_PACKETS
    starts: tuple[str, ...] = START_MODES
    models: tuple[str, ...] = PAPER_MODELS
    protocol: str = "paper"
    max_per_capture: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("packets", "starts", "models"):
            values = getattr(self, name)
            _require(len(values) > 0, f"{name} must not be empty")
            _require(
                len(set(values)) == len(values), f"{name} must not repeat a value, got {values!r}"
            )
        _require(
            all(1 <= n <= 64 for n in self.packets),
            f"packets must be in 1..64, got {self.packets!r}",
        )
        _require(
            all(s in START_MODES for s in self.starts),
            f"starts must be among {', '.join(START_MODES)}, got {self.starts!r}",
        )
        _require(
            self.max_per_capture is None or self.max_per_capture > 0,
            f"max_per_capture must be > 0, got {self.max_per_capture!r}",
        )


@dataclass(frozen=True)
class JobConfig:
    """What the main job runs.

    Args:
        protocols: evaluation protocols, run in this order.
        model: registered model name.
        n_packets: N, packets per sample.
        start: "first" or "payload".
        max_per_capture: keep at most this many sessions of each capture (seeded), so
            one large capture does not swamp the others.
        seed: seed of the splits and of training.
        epochs: most training epochs; with the paper's 40 and all sessions the job takes
            hours on a 2-core CPU, so the main job trains less, stopping early on
            validation F1 after ``patience`` epochs without progress.
    """

    protocols: tuple[str, ...] = ("paper", "strict")
    model: str = "unet1d_light"
    n_packets: int = 4
    start: str = "first"
    max_per_capture: int | None = 50
    seed: int = 0
    epochs: int = 6
    patience: int | None = 2


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json_ready(dataclasses.asdict(config))


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config from ``to_dict`` output; unknown keys are an error."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value

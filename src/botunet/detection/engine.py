"""Detector: scores each session of a capture or stream as soon as its sample is complete.

A session is scored once: when it has the N packets its sample needs (counted from its
first packet, or from its first payload packet), or when it ends with fewer. After its
verdict the sessions stage keeps only its counters, so memory holds only sessions still
waiting for packets plus one batch. Ready sessions are scored in batches; a batch is
flushed when full, when its oldest session has waited ``max_wait_s`` of capture time,
and at the end of input.

The capture clock is the latest packet time of the sessions stage's events (a session
becoming ready or ending). Packets of sessions already scored raise no event, so while
only such packets arrive the clock stands still and a waiting batch is scored at the
next event, or at the end of input, instead of after ``max_wait_s``.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botunet.config import DetectConfig, SampleConfig, SessionConfig
from botunet.detection.backends import Scorer, create_scorer
from botunet.detection.events import EventContext, Verdict, to_event
from botunet.detection.spec import ModelSpec, read_model_spec
from botunet.detection.writers import EventWriter
from botunet.progress import progress
from botunet.samples.extract import extract_batch, start_index
from botunet.sessions.session import Packet, Session

logger = logging.getLogger(__name__)

READY = "ready"
ICMP_PROTOCOLS = (1, 58)


@dataclass(slots=True)
class _Pending:
    """A session waiting in the batch: a snapshot, since the stage may reuse its record."""

    session: Session
    trigger: str
    ts_ns: int
    packets: int
    arrival_ns: int


@dataclass
class DetectionSummary:
    """Totals of one detection run, for the readable summary and its JSON form."""

    model: str
    model_version: str
    backend: str
    threshold: float
    n_packets: int
    start: str
    sessions: int = 0
    alerts: int = 0
    batches: int = 0
    packets_used: int = 0
    elapsed_s: float = 0.0
    triggers: Counter = field(default_factory=Counter)
    host_alerts: Counter = field(default_factory=Counter)
    host_max_score: dict[str, float] = field(default_factory=dict)
    accounting: Any = None

    def add(self, verdict: Verdict) -> None:
        self.sessions += 1
        self.packets_used += verdict.packets
        self.triggers[verdict.trigger] += 1
        if verdict.botnet:
            self.alerts += 1
            host = verdict.src_ip
            self.host_alerts[host] += 1
            self.host_max_score[host] = max(self.host_max_score.get(host, 0.0), verdict.score)

    def top_hosts(self, k: int = 10) -> list[tuple[str, int, float]]:
        """The ``k`` session initiators with most alerts: (host, alerts, highest score)."""
        ranked = sorted(self.host_alerts.items(), key=lambda item: (-item[1], item[0]))
        return [(host, n, self.host_max_score[host]) for host, n in ranked[:k]]

    def to_dict(self) -> dict[str, Any]:
        acc = self.accounting
        return {
            "model": self.model,
            "model_version": self.model_version,
            "backend": self.backend,
            "threshold": self.threshold,
            "n_packets": self.n_packets,
            "start": self.start,
            "sessions": self.sessions,
            "alerts": self.alerts,
            "batches": self.batches,
            "elapsed_s": self.elapsed_s,
            "triggers": dict(self.triggers),
            "top_hosts": [
                {"host": h, "alerts": n, "max_score": s} for h, n, s in self.top_hosts()
            ],
            "packets": {
                "read": getattr(acc, "packets_read", None),
                "in_sessions": getattr(acc, "packets_in_sessions", None),
                "used": self.packets_used,
                "skipped": dict(getattr(acc, "skipped", {}) or {}),
            },
        }


class Detector:
    """Scores the sessions of captures or pcap streams with a trained model.

    Args:
        model_dir: folder holding model.json and the weights (and model.onnx for the onnx
            backend); None for the model shipped with the package.
        config: detection settings; None for DetectConfig's defaults.
        onnx_path: the ONNX file for the onnx backend; None for ``model_dir/model.onnx``.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        config: DetectConfig | None = None,
        *,
        onnx_path: str | Path | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.config = config
        self.onnx_path = onnx_path

    def load(self) -> Detector:
        """Read the model's spec and load it on the configured backend."""
        config = self.config if self.config is not None else DetectConfig()
        spec = read_model_spec(self.model_dir)
        self.config_ = config
        self.spec_: ModelSpec = spec
        self.threshold_ = config.threshold if config.threshold is not None else spec.threshold
        self.session_config_: SessionConfig = spec.sample.session_config(spec.session)
        self.scorer_: Scorer = create_scorer(
            config.backend, spec, self.onnx_path, threads=config.threads
        )
        logger.info(
            "loaded %s (N=%d, L=%d, start=%s) on %s, threshold %.3f",
            spec.name,
            spec.sample.n_packets,
            spec.sample.bytes_per_packet,
            spec.sample.start,
            self.scorer_.name,
            self.threshold_,
        )
        return self

    @property
    def context_(self) -> EventContext:
        self._check_loaded()
        return EventContext(self.spec_.name, self.spec_.version, self.threshold_)

    def iter_verdicts(
        self, paths: Sequence[str | Path], *, accounting: Any = None
    ) -> Iterator[Verdict]:
        """Verdicts of every session of ``paths`` ("-" is stdin), each session once."""
        for batch in self.iter_batches(paths, accounting=accounting):
            yield from batch

    def iter_batches(
        self, paths: Sequence[str | Path], *, accounting: Any = None
    ) -> Iterator[list[Verdict]]:
        """Verdicts in the batches they were scored in."""
        from botunet.sessions.assembler import iter_session_events

        self._check_loaded()
        sample = self.spec_.sample
        events = iter_session_events(
            [str(p) for p in paths],
            self.session_config_,
            ready_packets=sample.n_packets,
            ready_start=sample.start,
            accounting=accounting,
        )
        return self.score_events(events)

    def score_events(self, events: Iterable[tuple[str, Session]]) -> Iterator[list[Verdict]]:
        """Batches of verdicts for a stream of ("ready" | "end", session) events.

        A session is taken at "ready", or at "end" if it still has its packets (an "end"
        without packets is a session that was ready, and so scored, earlier).
        """
        self._check_loaded()
        batch_size = self.config_.batch_size
        max_wait_ns = int(self.config_.max_wait_s * 1e9)
        pending: list[_Pending] = []
        clock_ns = 0
        for kind, session in events:
            # the capture clock: the latest packet time the sessions stage has shown us
            clock_ns = max(clock_ns, session.last_ns)
            if kind == READY or session.packets:
                pending.append(self._snapshot(session, kind, clock_ns))
            if not pending:
                continue
            if len(pending) >= batch_size:
                yield self._score(pending, "full")
                pending = []
            elif clock_ns - pending[0].arrival_ns >= max_wait_ns:
                yield self._score(pending, "waited")
                pending = []
        if pending:
            yield self._score(pending, "end of input")

    def detect(
        self,
        paths: Sequence[str | Path],
        *,
        writer: EventWriter | None = None,
        all_sessions: bool = False,
    ) -> DetectionSummary:
        """Score every session of ``paths``; write alerts (and benign flows with
        ``all_sessions``) to ``writer``; return the run's totals."""
        from botunet.sessions.accounting import Accounting

        self._check_loaded()
        spec, context = self.spec_, self.context_
        summary = DetectionSummary(
            model=spec.name,
            model_version=spec.version,
            backend=self.scorer_.name,
            threshold=self.threshold_,
            n_packets=spec.sample.n_packets,
            start=spec.sample.start,
        )
        accounting = Accounting()
        started = time.perf_counter()
        with progress(desc="detect", unit=" sessions") as bar:
            for batch in self.iter_batches(paths, accounting=accounting):
                for verdict in batch:
                    summary.add(verdict)
                    if writer is not None and (verdict.botnet or all_sessions):
                        writer.write(to_event(verdict, context))
                if writer is not None:
                    writer.flush()
                summary.batches += 1
                bar.update(len(batch))
        summary.elapsed_s = time.perf_counter() - started
        summary.accounting = accounting
        logger.info(
            "scored %d sessions in %d batches: %d alerts",
            summary.sessions,
            summary.batches,
            summary.alerts,
        )
        return summary

    def _check_loaded(self) -> None:
        if not hasattr(self, "scorer_"):
            raise RuntimeError("this Detector is not loaded yet; call load() first")

    def _snapshot(self, session: Session, kind: str, clock_ns: int) -> _Pending:
        used = sample_packets(session.packets, self.spec_.sample)
        ts_ns = used[-1].ts_ns if kind == READY and used else session.last_ns
        trigger = READY if kind == READY else session.end_reason
        snapshot = copy.copy(session)
        snapshot.packets = tuple(session.packets)
        return _Pending(snapshot, trigger, ts_ns, len(used), clock_ns)

    def _score(self, pending: list[_Pending], why: str) -> list[Verdict]:
        vectors = extract_batch([p.session for p in pending], self.spec_.sample)
        scores = self.scorer_.score(vectors)
        logger.debug("scored a batch of %d sessions (%s)", len(pending), why)
        threshold = self.threshold_
        return [_verdict(p, float(s), threshold) for p, s in zip(pending, scores, strict=True)]


def sample_packets(packets: Sequence[Packet], config: SampleConfig) -> list[Packet]:
    """The kept packets that land in the sample's N slots, in order."""
    first = start_index(packets, config.start)
    return [p for p in packets if 0 <= p.index - first < config.n_packets]


def _icmp_type_code(session: Session) -> tuple[int | None, int | None]:
    if session.protocol not in ICMP_PROTOCOLS or not session.packets:
        return None, None
    first = session.packets[0]
    header = first.data[first.l4_offset : first.l4_offset + 2]
    if first.index != 0 or len(header) < 2:
        return None, None
    return header[0], header[1]


def _verdict(pending: _Pending, score: float, threshold: float) -> Verdict:
    s = pending.session
    icmp_type, icmp_code = _icmp_type_code(s)
    return Verdict(
        capture=s.capture,
        protocol=s.protocol,
        ip_version=s.ip_version,
        src_ip=s.src_ip,
        src_port=s.src_port,
        dst_ip=s.dst_ip,
        dst_port=s.dst_port,
        first_ns=s.first_ns,
        ts_ns=pending.ts_ns,
        packets=pending.packets,
        trigger=pending.trigger,
        packets_fwd=s.packets_fwd,
        packets_bwd=s.packets_bwd,
        bytes_fwd=s.bytes_fwd,
        bytes_bwd=s.bytes_bwd,
        icmp_type=icmp_type,
        icmp_code=icmp_code,
        score=score,
        botnet=score >= threshold,
    )


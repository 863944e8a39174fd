"""Find captures and their labels: folders, manifests, sidecars and botnet IP lists.

Where a capture's label comes from, in order of precedence:

1. A folder named ``botnet`` or ``benign`` above the capture (the nearest one); the
   folder right below it names the family (botnet) or source (benign). A manifest CSV
   given as input (columns ``path,label,family_or_source``, paths relative to the
   manifest) plays the same part and must agree with such a folder.
2. A sidecar ``<capture>.labels.json`` with ``infected_hosts``: a session with an
   infected host on either end is botnet, every other session of the capture benign.
   In a ``botnet`` folder the sidecar refines the folder's label per session (the
   family stays the folder's); in a ``benign`` folder it is ignored with a warning.
3. A botnet IP list (``--botnet-ips``; one address per line, ``#`` comments, the ISCX
   Botnet 2014 convention): a session is botnet if either end is listed. It labels
   only captures that 1 and 2 leave unlabelled, and without it such a capture is an
   error.
"""

from __future__ import annotations

import csv
import functools
import ipaddress
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from botunet.errors import DatasetError
from botunet.labels.schema import UNKNOWN_FAMILY, Label
from botunet.pcap.reader import find_captures
from botunet.sessions.session import Session

logger = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".labels.json"
MANIFEST_SUFFIX = ".csv"


@dataclass(frozen=True)
class CaptureSource:
    """One capture and how its sessions are labelled.

    Attributes:
        path: the capture file.
        name: a short unique name (the path below the captures' common folder).
        family: botnet family or benign source; ``unknown`` when nothing names it.
        label: the label of every session, or None when ``hosts`` decide per session.
        label_source: "folder", "manifest", "sidecar" or "ip-list".
        hosts: infected or listed addresses (normalised) when ``label`` is None.
    """

    path: Path
    name: str
    family: str
    label: Label | None
    label_source: str
    hosts: frozenset[str] = frozenset()

    def label_of(self, src_ip: str, dst_ip: str) -> Label:
        """The label of a session between two addresses."""
        if self.label is not None:
            return self.label
        touches = normalize_ip(src_ip) in self.hosts or normalize_ip(dst_ip) in self.hosts
        return Label.BOTNET if touches else Label.BENIGN


def label_sessions(sessions: Sequence[Session], source: CaptureSource) -> np.ndarray:
    """Labels (int64, 0 benign / 1 botnet) of sessions read from ``source``."""
    return np.array([source.label_of(s.src_ip, s.dst_ip) for s in sessions], dtype=np.int64)


@functools.lru_cache(maxsize=65536)
def normalize_ip(text: str) -> str:
    """The canonical text of an address; the text unchanged when it is not one."""
    try:
        return ipaddress.ip_address(text.strip()).compressed
    except ValueError:
        return text


def read_ip_list(path: str | os.PathLike[str]) -> frozenset[str]:
    """Addresses of a botnet IP list: one per line, ``#`` starts a comment."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read botnet IP list {path}: {err}") from err
    addresses = set()
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            addresses.add(ipaddress.ip_address(text).compressed)
        except ValueError as err:
            raise DatasetError(f"{path}:{number}: not an IP address: {text!r}") from err
    return frozenset(addresses)


def read_sidecar(path: Path) -> tuple[frozenset[str], str | None]:
    """Infected hosts of a ``.labels.json`` sidecar, and its ``family`` when it has one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"cannot read label sidecar {path}: {err}") from err
    hosts = data.get("infected_hosts") if isinstance(data, dict) else None
    if not isinstance(hosts, list) or not hosts:
        raise DatasetError(f"label sidecar {path} has no infected_hosts list")
    try:
        normalized = frozenset(ipaddress.ip_address(str(h)).compressed for h in hosts)
    except ValueError as err:
        raise DatasetError(f"label sidecar {path}: {err}") from err
    family = data.get("family")
    return normalized, family if isinstance(family, str) and family else None


def folder_label(path: Path) -> tuple[Label, str] | None:
    """Label and family from the nearest ``botnet``/``benign`` folder above ``path``."""
    parents = path.resolve().parts[:-1]
    for depth in range(len(parents) - 1, -1, -1):
        name = parents[depth].lower()
        if name in ("botnet", "benign"):
            below = parents[depth + 1] if depth + 1 < len(parents) else UNKNOWN_FAMILY
            return Label.parse(name), below
    return None


def read_manifest(path: Path) -> list[tuple[Path, Label, str]]:
    """Captures of a manifest CSV: (path, label, family_or_source) per row."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"cannot read manifest {path}: {err}") from err
    entries = []
    for number, row in enumerate(rows, 2):
        family = row.get("family_or_source") or row.get("family") or UNKNOWN_FAMILY
        if not row.get("path") or not row.get("label"):
            raise DatasetError(f"{path}:{number}: a manifest row needs path and label columns")
        try:
            label = Label.parse(row["label"])
        except ValueError as err:
            raise DatasetError(f"{path}:{number}: {err}") from err
        capture = path.parent / row["path"]
        if not capture.is_file():
            raise DatasetError(f"{path}:{number}: capture not found: {capture}")
        entries.append((capture, label, family))
    return entries


def discover_captures(
    inputs: Iterable[str | os.PathLike[str]], botnet_ips: frozenset[str] | None = None
) -> list[CaptureSource]:
    """Labelled captures of folders, capture files and manifest CSVs, sorted by name.

    Raises:
        DatasetError: an input does not exist, a capture has no label source (and no
            botnet IP list is given), or two sources disagree.
    """
    inputs = list(inputs)
    declared: dict[Path, tuple[Label, str] | None] = {}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for capture in find_captures([path]):
                declared.setdefault(Path(capture).resolve(), None)
        elif path.is_file() and path.suffix.lower() == MANIFEST_SUFFIX:
            for capture, label, family in read_manifest(path):
                declared[capture.resolve()] = (label, family)
        elif path.is_file():
            declared.setdefault(path.resolve(), None)
        else:
            raise DatasetError(f"input not found: {path}")
    if not declared:
        raise DatasetError("no captures found in " + ", ".join(str(i) for i in inputs))

    names = _short_names(list(declared))
    sources = [
        _label_capture(path, names[path], manifest, botnet_ips)
        for path, manifest in declared.items()
    ]
    return sorted(sources, key=lambda s: s.name)


def _short_names(paths: list[Path]) -> dict[Path, str]:
    """Each path below the common folder of all of them, with '/' separators."""
    root = Path(os.path.commonpath([p.parent for p in paths]))
    return {p: p.relative_to(root).as_posix() for p in paths}


def _label_capture(
    path: Path,
    name: str,
    manifest: tuple[Label, str] | None,
    botnet_ips: frozenset[str] | None,
) -> CaptureSource:
    folder = folder_label(path)
    if manifest is not None and folder is not None and manifest[0] != folder[0]:
        raise DatasetError(
            f"label conflict for {path}: the manifest says {manifest[0].display_name}, "
            f"its folder says {folder[0].display_name}"
        )
    declared, kind = (manifest, "manifest") if manifest is not None else (folder, "folder")
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    hosts, sidecar_family = read_sidecar(sidecar) if sidecar.is_file() else (None, None)

    if declared is not None:
        label, family = declared
        if hosts is None:
            return CaptureSource(path, name, family, label, kind)
        if label == Label.BENIGN:
            logger.warning("%s: ignoring %s in a benign %s", path, sidecar.name, kind)
            return CaptureSource(path, name, family, label, kind)
        return CaptureSource(path, name, family, None, "sidecar", hosts)
    if hosts is not None:
        return CaptureSource(path, name, sidecar_family or UNKNOWN_FAMILY, None, "sidecar", hosts)
    if botnet_ips is not None:
        return CaptureSource(path, name, UNKNOWN_FAMILY, None, "ip-list", botnet_ips)
    raise DatasetError(
        f"no label for {path}: put it under a botnet/ or benign/ folder, add "
        f"{sidecar.name}, list it in a manifest, or give --botnet-ips"
    )

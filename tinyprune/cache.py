"""A content-hash cache of finished stages, so that re-running a deploy (or a sweep point) after a
failure or an interruption does not redo what already finished.

    cache = StageCache(Path("runs/.tinyprune-cache"))
    key = stage_key("convert", model_hash, data.fingerprint(), asdict(cfg))
    hit = cache.get("convert", key)                 # {name: bytes} or None
    cache.put("convert", key, {"model_int8.tflite": data, "convert.json": b"..."})

An entry is a directory ``<root>/<stage>/<key>/`` written to a temporary name and renamed into
place when complete, so a killed run never leaves an entry that looks finished. Keys hash
everything the stage's output depends on, plus the tinyprune version and ``CACHE_FORMAT``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from tinyprune import __version__

CACHE_FORMAT = 2  # bump when a stage's cached files change meaning (2: reports keep durations in `run`)
DIR_NAME = ".tinyprune-cache"
_COMPLETE = ".complete"


def _canonical(part: Any) -> bytes:
    if isinstance(part, (bytes, bytearray, memoryview)):
        return hashlib.sha256(bytes(part)).digest()
    return json.dumps(part, sort_keys=True, default=str).encode()


def stage_key(stage: str, *parts: Any) -> str:
    """A hex key for ``stage`` from its inputs (bytes are hashed, everything else JSON-encoded)."""
    h = hashlib.sha256(f"tinyprune {__version__} cache {CACHE_FORMAT} stage {stage}".encode())
    for part in parts:
        h.update(_canonical(part))
        h.update(b"\0")
    return h.hexdigest()[:24]


def torch_model_hash(model) -> str:
    """A hash of a torch module's architecture and every parameter and buffer."""
    h = hashlib.sha256(repr(model).encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:24]


class StageCache:
    """Directory-backed cache; ``root=None`` disables it (every lookup misses, nothing is stored)."""

    def __init__(self, root: Path | None):
        self.root = Path(root) if root is not None else None

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def _entry(self, stage: str, key: str) -> Path:
        assert self.root is not None
        return self.root / stage / key

    def get(self, stage: str, key: str) -> dict[str, bytes] | None:
        if self.root is None:
            return None
        entry = self._entry(stage, key)
        if not (entry / _COMPLETE).is_file():
            return None
        try:
            return {p.name: p.read_bytes() for p in sorted(entry.iterdir()) if p.name != _COMPLETE}
        except OSError:
            return None

    def put(self, stage: str, key: str, files: dict[str, bytes]) -> None:
        """Store ``files``; a cache that cannot be written is skipped (it only saves time)."""
        if self.root is None:
            return
        entry = self._entry(stage, key)
        tmp = entry.parent / f".{key}.{os.getpid()}-{uuid.uuid4().hex[:6]}"
        try:
            tmp.mkdir(parents=True)
            for name, data in files.items():
                (tmp / name).write_bytes(data)
            (tmp / _COMPLETE).write_text("")
            if entry.exists():
                shutil.rmtree(entry, ignore_errors=True)
            os.rename(tmp, entry)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:  # interrupted (Ctrl-C): leave no temporary entry behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise

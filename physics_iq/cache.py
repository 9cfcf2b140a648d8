"""A content-keyed on-disk cache for the real side of the benchmark (masks, downscaled frames, variance).

Keys are built from what the cached value was computed from: the evaluator's mode, frame rate and version,
and a fingerprint of every input file (size, modification time, and a hash of its first and last MiB). They
never contain a folder's name or the working directory: the official toolkit keys its caches by the
generated folder's basename and the cwd, so scoring a second model from a folder with the same name silently
returns the first model's numbers. Changing any dataset file changes its fingerprint and thus the key, which
invalidates exactly the entries computed from it.

Only the real (dataset) side is ever cached; generated videos are always recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Environment variable that sets the cache folder (``--cache-dir`` overrides it).
CACHE_ENV_VAR = "PHYSREFINE_CACHE_DIR"
#: Bump when the cached content or its computation changes, so that old entries are never reused.
CACHE_VERSION = 1
_HASH_SPAN = 1 << 20


def default_cache_dir() -> Path:
    """``$PHYSREFINE_CACHE_DIR``, else ``$XDG_CACHE_HOME/physrefine``, else ``~/.cache/physrefine``."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "physrefine"


def file_fingerprint(path: Path) -> str:
    """A cheap content fingerprint: size, mtime (ns) and SHA-256 of the first and last MiB.

    Reading whole videos would cost as much as decoding them; head and tail plus size and mtime catch every
    realistic change (re-encode, re-download, truncation, replacement).
    """
    stat = path.stat()
    digest = hashlib.sha256()
    digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_HASH_SPAN))
        if stat.st_size > _HASH_SPAN:
            handle.seek(max(stat.st_size - _HASH_SPAN, _HASH_SPAN))
            digest.update(handle.read(_HASH_SPAN))
    return digest.hexdigest()


def cache_key(kind: str, params: dict[str, Any], files: list[Path]) -> str:
    """Key of a cache entry: a hash of its kind, parameters and input-file fingerprints (not their paths)."""
    payload = {
        "version": CACHE_VERSION,
        "kind": kind,
        "params": params,
        "files": [file_fingerprint(p) for p in files],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:40]


class ArrayCache:
    """Stores dicts of arrays (plus a JSON blob) under a key, atomically.

    Args:
        root: The cache folder (created on first write).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def load(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """The entry stored under ``key``, or ``None`` (also for an unreadable, e.g. half-written, entry)."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files if name != "__meta__"}
                meta = json.loads(bytes(data["__meta__"]).decode())
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            logger.warning("ignoring unreadable cache entry %s (%s)", path, exc)
            return None
        return arrays, meta

    def store(self, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Write an entry atomically (temporary file in the same folder, then rename)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".part", dir=path.parent)
        try:
            payload: dict[str, Any] = {"__meta__": blob, **arrays}
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **payload)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

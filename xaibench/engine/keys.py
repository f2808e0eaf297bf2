"""Content keys: SHA-256 of canonical JSON. Same inputs => same key, on any machine, in any job order."""
from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys, no whitespace, tuples as lists: the byte-stable form that keys are hashed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default, allow_nan=True)


def digest(*parts: Any, length: int = 32) -> str:
    """Hex SHA-256 prefix of the canonical JSON of ``parts`` (128 bits by default)."""
    return hashlib.sha256(canonical_json(list(parts)).encode()).hexdigest()[:length]


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not canonicalisable: {type(obj).__name__}")

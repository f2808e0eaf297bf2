"""Per-stage seeding: torch, numpy's global state (Quantus draws from it) and ``random``."""
from __future__ import annotations

import random

import numpy as np
import torch

from xaibench.engine.keys import digest


def derive_seed(*parts: object) -> int:
    """A 31-bit seed derived from a stage key (and anything else identifying the stage)."""
    return int(digest(*parts, length=8), 16) % (2**31 - 1)


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy's global state and torch's CPU generator, plus CUDA's and MPS's where present.

    The same seeds as ``torch.manual_seed``, without its lazy seeding of absent accelerators: that formats a stack
    trace per call (0.1-1.5 ms, paid by every metric call of every cell).
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if torch.backends.mps.is_available():
        torch.mps.manual_seed(seed)

"""Per-stage seeding: torch, numpy's global state (Quantus draws from it) and ``random``."""
from __future__ import annotations

import random
import threading

import numpy as np
import torch

from xaibench.engine.keys import digest


# Held by a stage from seeding the global RNGs to its last draw (``metrics.quantus_adapter.score``): numpy's global
# state is one per process, so two threads scoring at once interleaved their draws, and each got valid scores that
# were not its call's alone. ``seed_everything`` and ``explainers.seeding.seeded`` take it too: another thread's
# reseeding in the middle of a held call's draws would replace its stream all the same. Re-entrant; taking it costs
# ~0.1 us per metric call. It serialises the draws of threads, which the suite's launchers (processes) never share.
GLOBAL_RNG_LOCK = threading.RLock()


def derive_seed(*parts: object) -> int:
    """A 31-bit seed derived from a stage key (and anything else identifying the stage)."""
    return int(digest(*parts, length=8), 16) % (2**31 - 1)


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy's global state and torch's CPU generator, plus CUDA's and MPS's where present.

    The same seeds as ``torch.manual_seed``, without its lazy seeding of absent accelerators: that formats a stack
    trace per call (0.1-1.5 ms, paid by every metric call of every cell).
    """
    with GLOBAL_RNG_LOCK:  # not while another thread's held call draws (GLOBAL_RNG_LOCK above)
        random.seed(seed)
        np.random.seed(seed % (2**32))
        torch.default_generator.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
        if torch.backends.mps.is_available():
            torch.mps.manual_seed(seed)

"""Per-sample randomness that depends on neither the batch composition nor the batch size.

The runner seeds torch/numpy/random before each stage (``seed_everything``). A stochastic method draws, for each
sample, from a generator seeded by ``torch.initial_seed()`` (the stage's seed; unchanged by draws) and a hash of
the sample's own bytes. So explaining a batch gives the same result as explaining each sample alone, whatever the
batch size or the position of the sample in the sweep, and the same config gives the same maps.

Model-free controls (``random``) must not even depend on the stage: a randomisation metric re-explains under a
torch state that Quantus re-seeds (``torch.manual_seed(seed + 1)`` before every re-explanation), and a control that
redrew its noise would look model-dependent. They use :func:`control_seeds`: the cell's ``seed`` (set by the runner
with :func:`cell_seed`; 0 outside a cell) and the sample's bytes, nothing else.

A text sample's identity is its token ids, not its embeddings: the embeddings are the model's weights (they
differ by ~1e-7 between CPUs after training, and a randomisation metric may re-initialise them), and hashing them
would redraw everything. Explainers seed from the ids they are given; re-explanations receive token embeddings
``(N, L, D)`` (what Quantus passes), and :func:`known_tokens` (set by the metrics' ``explain_func``) maps every
embedding vector of the cell's samples, and of the pad token, back to its id, so an unperturbed or token-replaced
sample seeds exactly as its ids do. Embeddings that are not all known token vectors (noise added by a stability
metric) are a new sample: they seed from the nearest known token of each position and the residual rounded to a
grid of ``RESIDUAL_GRID`` x the embeddings' RMS (:meth:`TokenTable.perturbed_identity`), so a noisy copy draws
its own noise, yet the same noisy copy draws alike on a CPU whose trained embeddings differ by ~1e-7 (hashing its
bytes would redraw everything there).

A metric's re-explanations (stability, randomisation, input invariance) draw from the seed the stored map was
drawn with, not from the score stage's: the runner wraps both the explanation stage and the metric's
``explain_func`` in :func:`explanation_draws` with the cell's explanation seed. So SmoothGrad re-explaining an
intact sample under a randomised model (MPRT, the random-logit test) draws the noise of its stored map, and the
similarity measures the model's influence, not Monte Carlo noise (common random numbers). A perturbed input is
a different sample and draws its own noise, as before.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch

from xaibench.engine.seeding import GLOBAL_RNG_LOCK

_MAX_SEED = 2**31 - 1
RESIDUAL_GRID = 1e-2  # perturbed embeddings: residual grid, relative to the token vectors' RMS
_CELL_SEED: ContextVar[int] = ContextVar("xaibench_cell_seed", default=0)
_KNOWN_TOKENS: ContextVar["TokenTable | None"] = ContextVar("xaibench_known_tokens", default=None)
_DRAW_SEED: ContextVar["int | None"] = ContextVar("xaibench_draw_seed", default=None)
_KEPT_DEVICES: ContextVar[frozenset[str]] = ContextVar("xaibench_kept_devices", default=frozenset())


class TokenTable:
    """Embedding vectors ``(D,)`` -> token id, matched bit for bit (built from the intact model's embeddings)."""

    def __init__(self, embeddings: torch.Tensor, ids: torch.Tensor) -> None:
        """``embeddings`` ``(..., D)`` are the embeddings of ``ids`` ``(...)`` (integer token ids)."""
        vectors = embeddings.detach().to("cpu").float().contiguous().reshape(-1, embeddings.shape[-1])
        flat = ids.detach().to("cpu").reshape(-1).tolist()
        self.dim = int(embeddings.shape[-1])
        self.dtype = ids.dtype
        self.ids: dict[bytes, int] = {}
        for vector, token in zip(vectors, flat):
            self.ids.setdefault(vector.numpy().tobytes(), int(token))
        self.vectors = torch.stack([torch.frombuffer(bytearray(b), dtype=torch.float32) for b in self.ids])  # (V, D)
        self.tokens = torch.tensor(list(self.ids.values()), dtype=self.dtype)  # (V,)
        self.grid = RESIDUAL_GRID * float(self.vectors.pow(2).mean().sqrt().clamp_min(1e-12))

    def decode(self, row: torch.Tensor) -> torch.Tensor | None:
        """Token ids ``(L,)`` of embeddings ``(L, D)`` whose every vector is known, else None."""
        if row.dim() != 2 or row.shape[-1] != self.dim or not row.dtype.is_floating_point:
            return None
        tokens = []
        for vector in row.float().contiguous():
            token = self.ids.get(vector.numpy().tobytes())
            if token is None:
                return None
            tokens.append(token)
        return torch.tensor(tokens, dtype=self.dtype)

    def perturbed_identity(self, row: torch.Tensor) -> torch.Tensor | None:
        """What a perturbed embedding row ``(L, D)`` seeds from: each position's nearest token id and its residual on
        the grid, ``(L, 1 + D)`` int64; None when ``row`` is not an embedding row of this table's width."""
        if row.dim() != 2 or row.shape[-1] != self.dim or not row.dtype.is_floating_point:
            return None
        row = row.float()
        nearest = torch.cdist(row, self.vectors).argmin(dim=1)  # (L,)
        residual = torch.round((row - self.vectors[nearest]) / self.grid).to(torch.int64)
        return torch.cat([self.tokens[nearest].to(torch.int64).unsqueeze(1), residual], dim=1)


@contextmanager
def known_tokens(table: TokenTable | None) -> Iterator[None]:
    """Within the block, token embeddings that ``table`` knows seed from their token ids (module docstring)."""
    token = _KNOWN_TOKENS.set(table)
    try:
        yield
    finally:
        _KNOWN_TOKENS.reset(token)


@contextmanager
def cell_seed(seed: int) -> Iterator[None]:
    """Within the block, :func:`control_seeds` derive from ``seed`` (the cell's config ``seed``)."""
    token = _CELL_SEED.set(int(seed))
    try:
        yield
    finally:
        _CELL_SEED.reset(token)


@contextmanager
def explanation_draws(seed: int | None) -> Iterator[None]:
    """Within the block, explainers draw from ``seed`` (the cell's explanation seed) instead of torch's stage seed.

    None keeps torch's (``torch.initial_seed()``): attributions made outside the suite have no explanation seed.
    """
    token = _DRAW_SEED.set(None if seed is None else int(seed))
    try:
        yield
    finally:
        _DRAW_SEED.reset(token)


def draw_base() -> int:
    """The base seed of per-sample draws: the explanation seed in :func:`explanation_draws`, else torch's."""
    seed = _DRAW_SEED.get()
    return torch.initial_seed() if seed is None else seed


def control_seeds(x: torch.Tensor, salt: str = "") -> list[int]:
    """One seed per sample from the cell's seed, ``salt`` and the sample's bytes only (never torch's RNG state)."""
    return sample_seeds(x, salt, base=_CELL_SEED.get())


def sample_seeds(x: torch.Tensor, salt: str = "", base: int | None = None) -> list[int]:
    """One 31-bit seed per sample of ``x`` ``(N, ...)``: :func:`draw_base` (or ``base``), ``salt`` and its bytes.

    Token embeddings ``(N, L, D)`` of known tokens (:func:`known_tokens`) hash as their token ids ``(N, L)``.
    """
    rows = x.detach().to("cpu").contiguous()
    base = draw_base() if base is None else base
    table = _KNOWN_TOKENS.get()
    seeds = []
    for row in rows:
        if table is not None:
            ids = table.decode(row)
            if ids is None:
                perturbed = table.perturbed_identity(row)
                row = row if perturbed is None else perturbed
            else:
                row = ids
        digest = hashlib.blake2b(digest_size=8)
        digest.update(f"{base}|{salt}|{row.dtype}|{tuple(row.shape)}|".encode())
        digest.update(row.reshape(-1).view(torch.uint8).numpy().tobytes())
        seeds.append(int.from_bytes(digest.digest(), "little") % _MAX_SEED)
    return seeds


def stage_seed(salt: str) -> int:
    """A seed shared by all samples of the stage (for draws that must not depend on any sample)."""
    digest = hashlib.blake2b(f"{draw_base()}|{salt}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little") % _MAX_SEED


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator seeded with ``seed`` (on CPU: draws are then identical on every device)."""
    return torch.Generator(device=device).manual_seed(seed)


@contextmanager
def global_draws_kept(device: torch.device | str = "cpu") -> Iterator[None]:
    """Run a block with the global torch, numpy and ``random`` states restored afterwards (none reseeded).

    Around a metric's re-explanation: whatever the explainer's libraries draw from the global RNGs (sklearn's
    ``Lasso`` takes one ``np.random`` number per fit even with ``selection="cyclic"``) must not shift the stream
    the metric draws its perturbations from, or a score would depend on how many explainer calls preceded each
    perturbation (the fast engine draws all perturbations first, Quantus one step at a time).

    Nested inside a block that already keeps ``device``'s states it does nothing (saving numpy's state costs about
    60 us): the fast engine keeps them once around all of a metric's re-explanations.
    """
    device = torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    key = f"cuda:{cuda[0]}" if cuda else "cpu"
    kept = _KEPT_DEVICES.get()
    if key in kept:
        yield
        return
    token = _KEPT_DEVICES.set(kept | {key})
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=cuda):
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
            _KEPT_DEVICES.reset(token)


@contextmanager
def seeded(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run a block (a library call that draws from global RNGs) with torch, numpy and ``random`` seeded by ``seed``.

    The global states are restored afterwards, so the caller's RNG streams (and ``torch.initial_seed()``) are
    unchanged. Used around captum's NoiseTunnel/GradientShap/Lime/KernelShap and the shap/lime libraries, which
    only draw from global RNGs (captum#742, lime#231).
    """
    device = torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=cuda):  # seeded, drawn, restored as one (engine/seeding.py)
        np_state, py_state = np.random.get_state(), random.getstate()
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)

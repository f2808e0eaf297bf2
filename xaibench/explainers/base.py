"""The explainer contract (design.md: Explainer).

``explain(model, x, target) -> Explanation`` with attributions shaped like ``x`` (text: per token ``(N, L)``),
finite, deterministic once the runner has seeded torch/numpy/random. Explainers declare the modalities they
handle and the model capabilities they need; the runner turns a mismatch into ``not_applicable`` rows.

Shared conventions of every method (one vocabulary of parameters):

- ``n_steps`` (path / optimisation steps), ``n_samples`` (random draws or perturbations per sample),
  ``perturbations_per_eval`` (perturbations per model forward), ``baseline`` (see :mod:`xaibench.explainers.inputs`),
  ``internal_batch_size`` (rows per forward, for memory).
- Randomness is drawn per sample from generators seeded by the runner's seed and the sample's own values
  (:mod:`xaibench.explainers.seeding`), so a batch gives the same result as each sample alone and the batch size
  never changes a result.
- Text (token ids ``(N, L)``) is explained at the embedding layer; "absent" is the model's ``pad_id`` token.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import nn

from xaibench.errors import UserError
from xaibench.types import CONTROL_ROLE, ROLE_KEY, Capability, Explanation, Modality

ALL_MODALITIES = frozenset(Modality)
DENSE_MODALITIES = frozenset({Modality.TABULAR, Modality.IMAGE, Modality.TIME_SERIES})


@dataclass(frozen=True)
class CallRows:
    """Model rows one ``explain`` call holds at once: its largest forward, at most ``per_call + n * per_input`` rows
    for ``n`` inputs (the activations a backward keeps live, or a no-grad forward's batch).

    The fast scoring engine sizes its re-explanation calls by it (``metrics/fast/stability.py``): as many inputs per
    call as keep ``n * per_input`` within ``chunk_size`` rows, and with ``per_input == 0`` (a per-sample loop, or a
    forward of a fixed size across the batch) as many as ``elements_per_input`` allows.

    Attributes:
        per_input: rows each input adds to the largest forward (saliency 1, IG ``n_steps``, occlusion its
            perturbations per forward); 0 when the forwards do not grow with the inputs of the call.
        per_call: rows of the largest forward whatever the call's inputs (SmoothGrad's ``n_samples`` noisy copies
            of one sample, LIME's ``perturbations_per_eval`` rows across samples).
        elements_per_input: other per-input working memory of the call, in float elements (LIME's and Kernel
            SHAP's ``(n_samples, M)`` coalitions and their float64 design matrices); 0 if negligible.
    """

    per_input: int = 1
    per_call: int = 0
    elements_per_input: int = 0

    def largest_forward(self, n_inputs: int) -> int:
        """Upper bound on the rows of one forward of a call explaining ``n_inputs`` inputs."""
        return self.per_call + n_inputs * self.per_input


@dataclass(frozen=True)
class Explainer:
    """Base of every registered method; fields are the config parameters.

    Class attributes:
        modalities: input kinds the method handles.
        requires: model capabilities the method needs (gradients, attention, ...).
        batch_tolerance: max abs difference between explaining a batch and each sample alone (contract test);
            0 < tolerance only covers floating-point reassociation of batched matmuls/convolutions.
        batch_sensitive: the result is the end of an iterative optimisation whose stopping rule thresholds model
            outputs (Wachter's validity check per lambda round), so the float reassociation of another batch
            composition can change a map by far more than ``batch_tolerance`` suggests. The fast scoring engine
            then re-explains with Quantus' batches (one perturbation step of ``N`` inputs per call).
        positive_params: integer/float fields that must be > 0 (checked at construction, before any compute).
        unused_params: per modality, fields that do not change the result there (occlusion's ``window`` and
            ``stride`` on tabular data, explained one feature at a time): the explanation key fills them with
            their defaults and the rows leave them out with a note, so ``method.window=4`` on a table is the same
            experiment as the default, not a second one with identical values (``engine/canonical.py``).
        control: the method is a reference point (a sanity baseline: random noise, a constant map, an edge
            detector), not a method under test. Rows record ``"role": "control"`` in ``method_params``
            (:meth:`recorded_role`), and ``xaibench compare`` reports a control's own drift instead of failing on it,
            while every method must still beat it. Subclasses inherit it; set it on your own control method.
        counterfactual: the method stores counterfactual inputs (``Explanation.counterfactuals``); the report
            draws them, and looks for them only in the cells of such methods.
        target_gradient_only: under :func:`summed_gradients` the maps read the network only through the gradient
            of the summed target outputs with respect to the inputs (saliency, IG), never through output values or
            layer hooks: the fast engine may then fold the network's last pooling and linear layer into one
            (``metrics/fast/_folded_head.py``; the same gradient bit for bit).
    """

    name: ClassVar[str]
    modalities: ClassVar[frozenset[Modality]] = ALL_MODALITIES
    requires: ClassVar[frozenset[Capability]] = frozenset()
    batch_tolerance: ClassVar[float] = 1e-5
    batch_sensitive: ClassVar[bool] = False
    positive_params: ClassVar[tuple[str, ...]] = ()
    non_negative_params: ClassVar[tuple[str, ...]] = ()  # >= 0 (a penalty, a noise level: -1 ran as 0 or failed late)
    fraction_params: ClassVar[tuple[str, ...]] = ()  # in [0, 1] (a probability, a mixing weight)
    unused_params: ClassVar[dict[Modality, tuple[str, ...]]] = {}
    control: ClassVar[bool] = False
    counterfactual: ClassVar[bool] = False  # stores counterfactuals (Explanation.counterfactuals): the report draws them
    target_gradient_only: ClassVar[bool] = False

    def __post_init__(self) -> None:
        names = {f.name for f in fields(self)}
        for param in self.positive_params:
            value = getattr(self, param)
            if param in names and value is not None and not value > 0:
                raise UserError(f"method {getattr(self, 'name', type(self).__name__)!r}: {param} must be > 0, got {value!r}")
        for params, bound, holds in ((self.non_negative_params, ">= 0", lambda v: v >= 0),
                                     (self.fraction_params, "in [0, 1]", lambda v: 0 <= v <= 1)):
            for param in params:
                value = getattr(self, param)
                if param in names and value is not None and not holds(value):
                    raise UserError(f"method {getattr(self, 'name', type(self).__name__)!r}: {param} must be {bound}, "
                                    f"got {value!r}")

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:  # pragma: no cover
        raise NotImplementedError

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """Model rows one call holds at once (:class:`CallRows`) for inputs of ``input_shape`` (one sample's, as
        the cell holds it). Every built-in method declares its own (the contract test counts them); the default is
        :func:`guessed_call_rows`, a conservative guess for methods that do not."""
        return guessed_call_rows(self)

    def recorded_params(self, modality: Modality) -> dict[str, object]:
        """Facts about how the method works on ``modality`` that the rows record next to its config parameters
        (``method_params``), e.g. the feature grouping of a perturbation method. None by default."""
        return {}

    def recorded_role(self) -> dict[str, str]:
        """``{"role": "control"}`` for a control (``control``), else ``{}``: recorded in the rows' ``method_params``,
        so the table itself says which methods are reference points (``results/roles.py``)."""
        return {ROLE_KEY: CONTROL_ROLE} if self.control else {}


def guessed_call_rows(explainer: object) -> CallRows:
    """``n_steps`` or ``n_samples`` rows per input if the method has such a parameter (a path or a sample drawn
    per input, forwarded with the batch), else one: for explainers that do not declare ``call_rows`` (a
    bring-your-own subclass, any object with ``explain``)."""
    rows = getattr(explainer, "n_steps", 0) or getattr(explainer, "n_samples", 0) or 1
    return CallRows(per_input=max(1, int(rows)))


_DIAGNOSTICS: ContextVar[bool] = ContextVar("xaibench_explainer_diagnostics", default=True)


def diagnostics_enabled() -> bool:
    """Whether explainers compute their diagnostics (``extras``, e.g. IG's convergence delta: extra forwards)."""
    return _DIAGNOSTICS.get()


@contextmanager
def _switched(flag: ContextVar[bool], value: bool) -> Iterator[None]:
    """``flag`` set to ``value`` inside the block (this thread / task only), restored after."""
    token = flag.set(value)
    try:
        yield
    finally:
        flag.reset(token)


def without_diagnostics() -> AbstractContextManager[None]:
    """Explain without diagnostics: metrics that re-explain perturbed inputs only use the maps."""
    return _switched(_DIAGNOSTICS, False)


_SUMMED_GRADIENTS: ContextVar[bool] = ContextVar("xaibench_explainer_summed_gradients", default=False)


def summed_gradients_enabled() -> bool:
    """Whether gradient methods seed one backward per forward (the summed target outputs) instead of captum's one
    per row (:class:`~xaibench.explainers.inputs.SummedTargetForward`; the same gradients bit for bit)."""
    return _SUMMED_GRADIENTS.get()


def summed_gradients() -> AbstractContextManager[None]:
    """Take gradients of the summed target outputs: the fast engine re-explaining many perturbed inputs."""
    return _switched(_SUMMED_GRADIENTS, True)


_FORWARD_ROWS: ContextVar[int | None] = ContextVar("xaibench_explainer_forward_rows", default=None)


def forward_rows_override() -> int | None:
    """Rows per model forward that perturbation methods use instead of their ``perturbations_per_eval`` (None:
    their own). Set by :func:`forward_rows` only."""
    return _FORWARD_ROWS.get()


def forward_rows(rows: int) -> AbstractContextManager[None]:
    """Let the vectorised surrogates (LIME, Kernel SHAP) forward ``rows`` perturbed rows per model call: the fast
    engine's re-explanations use its chunk. ``perturbations_per_eval`` only batches forwards; outputs differ by
    batch-composition rounding at most."""
    return _switched(_FORWARD_ROWS, int(rows))  # type: ignore[arg-type]


class EmbeddedForward(nn.Module):
    """A text model seen as a function of its token embeddings ``(N, L, D) -> (N, K)``.

    An ``nn.Module`` (not a bound method) so that hook-based methods (DeepLIFT) reach the model's layers.
    """

    takes_embeddings = True

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.model.forward_embedded(embeddings)


def is_token_ids(x: torch.Tensor) -> bool:
    return not x.dtype.is_floating_point


def per_token(attributions: torch.Tensor) -> torch.Tensor:
    """Sum embedding-dimension attributions ``(N, L, D)`` into per-token attributions ``(N, L)``."""
    return attributions.sum(dim=-1)


def check_tabular(method: str, x: torch.Tensor) -> None:
    """Raise ``TypeError`` unless ``x`` is a tabular float batch ``(N, F)``."""
    if x.dim() != 2 or not x.dtype.is_floating_point:
        raise TypeError(f"{method} explains tabular float inputs (N, F), got {tuple(x.shape)} {x.dtype}")


def select_target(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``logits[i, target[i]]`` as ``(N,)``."""
    return logits.gather(1, target.reshape(-1, 1).to(logits.device)).squeeze(1)

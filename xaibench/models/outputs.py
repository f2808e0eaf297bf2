"""What a model's forward returns (logits, probabilities or other scores), declared and checked on a first batch.

The suite explains functions of logits (``explain_output``: log_odds, log_softmax, probability, logit; see
``xaibench/explainers/output.py``), and metrics with ``softmax: true`` apply a softmax to the forward's output. A
model that ends in a softmax returns probabilities ``p``; read as logits, ``explain_output=log_odds`` would explain
``p_t - logsumexp_{j != t} p_j`` and ``probability`` would explain ``softmax(p)_t``: silently something else.

So a model declares what it returns (``ModelSpec.class_scores``; the adapters' ``model.outputs``):

- ``logits``: explained as they are;
- ``probabilities`` (``torch_module``/Hugging Face with ``model.outputs=probabilities``; scikit-learn's
  ``predict_proba`` always): the adapter wraps the model so that its forward returns **log-probabilities**
  (:class:`LogProbabilities`). ``log p`` are logits of ``p`` (``softmax(log p) = p``), so every ``explain_output``
  and every softmax a metric applies reads the intended quantity: ``log_odds = log(p_t / (1 - p_t))``,
  ``log_softmax = log p_t``, ``probability = p_t``. ``logit`` is refused (the model has no logits other than
  ``log p``). An exact 0 counts as the smallest normal float32 (``log = -87.3``), so saturated models
  (pure-leaf forests) give finite log-odds;
- ``scores`` (``least_squares``: fitted class indicators): only ``explain_output=logit``, the score itself.

The adapters check the declaration on a batch of the dataset's inputs when the model is built (which the
pre-flight does, so a mismatch stops the run before anything is computed): output shape ``(N, K)`` with the
dataset's ``K``, finite values, and rows that are probabilities (each in ``[0, 1]``, summing to 1) exactly when
``probabilities`` is declared.
"""
from __future__ import annotations

import re

from typing import Any

import torch
from torch import nn

from xaibench.errors import UserError

OUTPUT_KINDS = ("logits", "probabilities")  # what a user's model may declare (``model.outputs``)
PROBABILITY_FLOOR = torch.finfo(torch.float32).tiny  # an exact 0 probability counts as this (log: -87.3)
SUM_TOLERANCE = 1e-4  # |sum_k p_k - 1| allowed per row (float32 softmax sums are within ~1e-6 * K)
CHECK_SAMPLES = 8  # rows of the first batch the declaration is checked on


def check_outputs_option(value: Any, what: str, option: str = "model.outputs") -> str:
    """``model.outputs`` (the API's ``outputs``) must be one of :data:`OUTPUT_KINDS`."""
    if value not in OUTPUT_KINDS:
        raise UserError(f"{what}{': ' if what else ''}{option} must be one of {', '.join(OUTPUT_KINDS)}, got {value!r}")
    return value


def are_probabilities(scores: torch.Tensor) -> bool:
    """Every row of ``scores (N, K)`` is in ``[0, 1]`` and sums to 1 (within :data:`SUM_TOLERANCE`)."""
    scores = scores.detach().double()
    if scores.numel() == 0 or not torch.isfinite(scores).all():
        return False
    in_range = bool(((scores >= 0) & (scores <= 1)).all())
    return in_range and bool(((scores.sum(dim=-1) - 1).abs() <= SUM_TOLERANCE).all())


def check_class_scores(module: nn.Module, x: torch.Tensor, n_classes: int | None, declared: str, what: str,
                       *, option: str = "model.outputs", layout: str = "") -> int:
    """Run ``module`` on the first rows of ``x`` and check that it returns ``(N, n_classes)`` scores of the
    ``declared`` kind (``logits`` or ``probabilities``); ``n_classes=None`` skips the width check. ``layout``
    (``"; the dataset gives ..."``) ends the message of a forward that fails: where the inputs' shape comes from.

    Returns:
        The number of class scores ``K``.

    Raises:
        UserError: the forward fails on this input layout, returns another shape or non-finite values, or returns
            probabilities when logits are declared (and the reverse). The message names the fix.
    """
    batch = x[:CHECK_SAMPLES]
    modes = [(part, part.training) for part in module.modules()]
    try:
        with torch.no_grad():
            scores = module.eval()(batch)
    except Exception as error:  # noqa: BLE001 - a model that cannot take the dataset's layout is the user's
        message = " ".join(_last_error_line(str(error)).split())[:200]
        raise UserError(f"{what}: forward fails on inputs of shape {tuple(batch.shape)[1:]} per sample: "
                        f"{type(error).__name__}: {message}{_device_hint(message) or layout}") from None
    finally:
        for part, training in modes:  # as it was (a wrapper may hold a model in eval mode)
            part.training = training
    width = scores.shape[1] if isinstance(scores, torch.Tensor) and scores.dim() == 2 else 0
    if not width or (n_classes and width != n_classes) or width < 2:  # one score: log_odds, softmax would be 0, 1
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        binary = width == 1
        raise UserError(f"{what}: forward must return class scores (N, {n_classes or 'K >= 2'}), got {shape} for "
                        f"{len(batch)} samples" + (f"; the dataset has {n_classes} classes" if n_classes else "")
                        + ("; a single binary logit z is the two-class logits [0, z]: return "
                           "torch.cat([torch.zeros_like(z), z], dim=1)" if binary else "")
                        + ("" if isinstance(scores, torch.Tensor) else "; wrap the model so that forward returns the "
                           "scores tensor itself (e.g. model(x)[0] or model(x)['logits'])")
                        + (f"; its inputs are {tuple(batch.shape[1:])} per sample (series and images have a channel "
                           "axis)" if isinstance(scores, torch.Tensor) and scores.dim() > 2 else ""))
    if not torch.isfinite(scores).all():
        raise UserError(f"{what}: forward returns NaN or infinite scores on the dataset's first samples")
    probabilities = are_probabilities(scores)
    if declared == "logits" and probabilities:
        raise UserError(f"{what}: forward returns probabilities (every row in [0, 1], summing to 1), not logits; "
                        f"set {option}=probabilities (explained through log-probabilities) or drop the final "
                        "softmax")
    if declared == "probabilities" and not probabilities:
        low, high = float(scores.min()), float(scores.max())
        off = float((scores.sum(-1) - 1).abs().max())  # "row sums up to 1.64 from 1" read as sums of 1.64
        raise UserError(f"{what}: {option}=probabilities, but forward's rows are not probabilities (values in "
                        f"[{low:.3g}, {high:.3g}], row sums off 1 by up to {off:.3g}); set {option}=logits")
    return int(scores.shape[1])


def log_probabilities(probabilities: torch.Tensor) -> torch.Tensor:
    """``log p`` ``(N, K)`` with exact zeros floored at :data:`PROBABILITY_FLOOR`; logits of ``p``."""
    return torch.log(probabilities.clamp_min(PROBABILITY_FLOOR))


class TransformedScores(nn.Module):
    """``model`` with its class scores ``(N, K)`` replaced by :meth:`transform` of them (subclasses define it).

    Transparent otherwise: the model's other attributes (``embed``, ``pad_id``, ``attention_maps``...) are its own,
    and ``forward_embedded`` / ``forward_with_attention`` (first output: the scores) are transformed like
    ``forward``. Methods the model lacks stay absent (``hasattr`` answers as for the model), so input-kind detection
    is unchanged. The wrapped model is ``self.model`` (its weights are saved under ``model.``).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def transform(self, scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The input as the model takes it (identity; :class:`Float32Scores` casts it)."""
        return x

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.transform(self.model(self.prepare(x), *args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = getattr(self._modules["model"], name)  # AttributeError when the model lacks it, as it should
        if name == "forward_embedded":
            return lambda embeddings: self.transform(inner(self.prepare(embeddings)))
        if name == "forward_with_attention":
            def with_attention(x: torch.Tensor, *args: Any, **kwargs: Any):
                scores, attention = inner(self.prepare(x), *args, **kwargs)
                return self.transform(scores), attention
            return with_attention
        return inner


class LogProbabilities(TransformedScores):
    """A model that returns probabilities, seen through its log-probabilities (logits of the same distribution).

    ``forward(x) = log(model(x))`` ``(N, K)``; ``softmax`` of it gives the model's probabilities back.
    """

    def transform(self, scores: torch.Tensor) -> torch.Tensor:
        return log_probabilities(scores)


class Float32Scores(TransformedScores):
    """A model whose weights are another floating dtype (``float64``, ``bfloat16``...) seen as the suite's float32.

    Floating inputs (and embeddings) are cast to the model's dtype, its class scores back to float32; gradients
    flow through both casts, so attributions are those of the model itself (up to float32 rounding of the
    result). The caller's model keeps its dtype.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__(model)
        self.model_dtype = dtype

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.model_dtype) if x.is_floating_point() else x

    def transform(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.float()


_ERROR_LINE = re.compile(r"(?:[\w.]+\.)?\w*(?:Error|Exception): (.+)")  # "RuntimeError: mat1 and mat2 ..."


def _last_error_line(text: str) -> str:
    """The error itself: a TorchScript module's failure lists its serialized and original code first, then the
    error (``RuntimeError: mat1 and mat2 shapes cannot be multiplied``) and maybe a list of backends; other
    messages as they are."""
    if not text.startswith("The following operation failed in the TorchScript interpreter"):
        return text
    found = [match.group(1) for match in map(_ERROR_LINE.fullmatch, (line.strip() for line in text.splitlines()))
             if match]
    return found[-1] if found else text


def _device_hint(message: str) -> str:
    """Why a forward that asks for CUDA fails here: its code fixes a GPU device (``torch.zeros(..., device='cuda')``,
    a model traced on a GPU), but models are built and checked on the CPU and moved to ``device`` afterwards."""
    if "CUDA" not in message and "NVIDIA" not in message:
        return ""
    return ("; its code creates tensors on a GPU ('cuda'), but models are built and checked on the CPU and then "
            "moved to the run's device: create them on the input's device (device=x.device), or trace it on the CPU")


def as_float32_model(module: nn.Module) -> nn.Module:
    """``module`` itself when its floating weights are float32 (or it has none), else :class:`Float32Scores` in
    the dtype of its first floating parameter (or buffer)."""
    weights = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    if not weights or weights[0].dtype == torch.float32:
        return module
    return Float32Scores(module, weights[0].dtype)


def check_explain_output(model_name: str, kind: str, explain_output: str) -> None:
    """Refuse an ``explain_output`` that would misread the model's class scores of ``kind`` (see module docs)."""
    if kind == "scores" and explain_output != "logit":
        raise UserError(f"model {model_name} outputs class scores that are not logits, so explain_output="
                        f"{explain_output} would misread them; set explain_output=logit")
    if kind == "probabilities" and explain_output == "logit":
        raise UserError(f"model {model_name} outputs probabilities, which have no logits: explain_output=logit "
                        "would explain log-probabilities; set explain_output=probability (the model's score "
                        "itself), log_odds or log_softmax")

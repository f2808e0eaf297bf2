"""Score-CAM (Wang et al., 2020, "Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural
Networks"); captum has no implementation, so it is written here on torch, as the authors' code computes it."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xaibench.explainers.base import CallRows, Explainer, select_target
from xaibench.explainers.cam._layers import feature_layer, spatial_dims, upsample
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality


def _feature_maps(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    store: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out.detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    if "a" not in store:
        raise ValueError("the CAM layer was not used by the forward")
    return store["a"]


def min_max(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-map min-max normalisation ``(K, 1, *S)`` and which maps are not constant ``(K,)``."""
    dims = spatial_dims(maps)
    low, high = maps.amin(dim=dims, keepdim=True), maps.amax(dim=dims, keepdim=True)
    varies = (high > low).reshape(-1)
    return (maps - low) / torch.where(high > low, high - low, torch.ones_like(high)), varies


@EXPLAINERS.register("score_cam")
@dataclass(frozen=True)
class ScoreCamExplainer(Explainer):
    """``ReLU(sum_k s_k up(A^k))`` with ``s_k = softmax(f(x * norm(up(A^k))))_target``.

    Each feature map ``A^k`` of ``layer`` (as in ``grad_cam``) is upsampled to the input (``up``), min-max
    normalised to ``[0, 1]`` and used as a mask on ``x``; its weight is the target's probability on the masked
    input; constant maps get weight 0 (the authors' code skips them). Gradient-free: one forward per channel
    (``internal_batch_size`` masked inputs per forward). Output shaped like ``x``. Needs the CONV capability.
    Deterministic; batch tolerance 1e-5.
    """

    modalities = frozenset({Modality.IMAGE, Modality.TIME_SERIES})
    requires = frozenset({Capability.CONV})
    positive_params = ("internal_batch_size",)
    layer: str | None = None
    internal_batch_size: int = 64

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """The batch's feature maps in one forward, then per sample its masked inputs, ``internal_batch_size`` per
        forward (fewer when the layer has fewer channels)."""
        return CallRows(per_input=1, per_call=self.internal_batch_size)

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        x = x.detach()
        maps = _feature_maps(model, feature_layer(model, self.layer), x)  # (N, K, *S)
        cams = []
        for i in range(len(x)):
            upsampled = upsample(maps[i].unsqueeze(1), tuple(x.shape[2:]))  # (K, 1, *S_x)
            masks, varies = min_max(upsampled)  # (K, 1, *S_x)
            scores = self._scores(model, x[i : i + 1] * masks, target[i])
            weights = torch.where(varies, scores, torch.zeros_like(scores))
            cams.append(torch.relu((weights.reshape(-1, *[1] * (upsampled.dim() - 1)) * upsampled).sum(dim=0)))
        return Explanation(torch.stack(cams).expand_as(x).contiguous())

    def _scores(self, model: nn.Module, masked: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Target probability on each masked input ``(K,)``."""
        out = []
        with torch.no_grad():
            for start in range(0, len(masked), self.internal_batch_size):
                chunk = masked[start : start + self.internal_batch_size]
                probabilities = torch.softmax(model(chunk), dim=1)
                out.append(select_target(probabilities, target.expand(len(chunk))))
        return torch.cat(out)

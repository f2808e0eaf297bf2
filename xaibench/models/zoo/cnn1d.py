"""Small 1-D convolutional network for time series ``(N, C, T)`` (cf. Wang et al., 2017, "Time series
classification from scratch with deep neural networks: a strong baseline")."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from xaibench.data.user.arrays import series_layout_hint
from xaibench.errors import UserError
from xaibench.models.base import ModelSpec
from xaibench.registry import MODELS
from xaibench.types import Capability, Dataset, Modality


@MODELS.register("cnn1d")
@dataclass(frozen=True)
class CNN1D(ModelSpec):
    """``[Conv1d(k) -> ReLU -> MaxPool1d(2)] * len(channels) -> global MaxPool1d -> Linear``.

    Global max pooling makes the detector shift-invariant (a motif anywhere in the series); pooling and ReLU are
    modules (``nn.MaxPool1d``, ``nn.ReLU``) that DeepLIFT's rules cover.
    """

    modalities = frozenset({Modality.TIME_SERIES})
    capabilities = frozenset({Capability.GRADIENTS, Capability.PROBA, Capability.CONV, Capability.LRP})
    channels: tuple[int, ...] = (16, 32)
    kernel_size: int = 7
    epochs: int = 10
    lr: float = 5e-3

    def build(self, dataset: Dataset) -> nn.Module:
        if len(dataset.input_shape) != 2:
            raise UserError(f"cnn1d needs series (N, C, T); dataset {dataset.name} has inputs {dataset.input_shape}")
        in_channels, length = dataset.input_shape
        layers: list[nn.Module] = []
        for out_channels in self.channels:
            if length < 2:
                raise UserError(f"cnn1d: series of length {dataset.input_shape[1]} too short for "
                                f"{len(self.channels)} pooling stages; {series_layout_hint(dataset.input_shape)}")
            layers += [nn.Conv1d(in_channels, out_channels, self.kernel_size, padding=self.kernel_size // 2),
                       nn.ReLU(), nn.MaxPool1d(2)]
            conv_length = length + 2 * (self.kernel_size // 2) - self.kernel_size + 1
            in_channels, length = out_channels, conv_length // 2
        layers += [nn.MaxPool1d(length), nn.Flatten(), nn.Linear(in_channels, dataset.n_classes)]
        return nn.Sequential(*layers)

"""Small audio classifiers: a 1-D CNN on the raw waveform and a 2-D CNN on the log-magnitude spectrogram.

Both end in global max pooling over time, so they detect an event wherever it occurs in the clip (the synthetic
audio sets place it at random), and use module ReLUs/pools that DeepLIFT's rules cover. The waveform network's
first convolution is strided (a learned filterbank: ``kernel_size`` samples, ``stride`` hop), the common front
end of raw-audio models (cf. Dai et al., 2017, "Very deep convolutional neural networks for raw waveforms").
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from xaibench.errors import UserError
from xaibench.models.base import ModelSpec
from xaibench.registry import MODELS
from xaibench.types import Dataset, Modality


@MODELS.register("audio_cnn1d")
@dataclass(frozen=True)
class AudioCNN1D(ModelSpec):
    """Waveforms ``(N, C, T)``: ``Conv1d(k, stride) -> ReLU -> MaxPool(4) -> Conv1d(5) -> ReLU -> global max -> Linear``."""

    modalities = frozenset({Modality.TIME_SERIES})
    channels: tuple[int, int] = (16, 32)
    kernel_size: int = 32
    stride: int = 8
    epochs: int = 15
    lr: float = 5e-3

    def build(self, dataset: Dataset) -> nn.Module:
        if len(dataset.input_shape) != 2:
            raise UserError(f"audio_cnn1d needs waveforms (N, C, T); dataset {dataset.name} has {dataset.input_shape}")
        in_channels, length = dataset.input_shape
        frames = (length - self.kernel_size) // self.stride + 1
        if frames // 4 < 1:
            raise UserError(f"audio_cnn1d: waveforms of {length} samples are too short for kernel_size "
                            f"{self.kernel_size}, stride {self.stride}")
        first, second = self.channels
        return nn.Sequential(
            nn.Conv1d(in_channels, first, self.kernel_size, stride=self.stride), nn.ReLU(), nn.MaxPool1d(4),
            nn.Conv1d(first, second, 5, padding=2), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(),
            nn.Linear(second, dataset.n_classes),
        )


@MODELS.register("spectrogram_cnn")
@dataclass(frozen=True)
class SpectrogramCNN(ModelSpec):
    """Spectrograms ``(N, 1, F, T')``: two 3x3 conv blocks (the first pooled 2x2), global max pooling, linear."""

    modalities = frozenset({Modality.IMAGE})
    channels: tuple[int, int] = (16, 32)
    epochs: int = 15
    lr: float = 5e-3

    def build(self, dataset: Dataset) -> nn.Module:
        in_channels = dataset.input_shape[0]
        first, second = self.channels
        return nn.Sequential(
            nn.Conv2d(in_channels, first, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(first, second, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
            nn.Linear(second, dataset.n_classes),
        )

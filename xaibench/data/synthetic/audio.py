"""Synthetic audio: short noisy recordings with one planted, class-defining sound event; ground truth is the event.

Each clip (``sample_rate`` Hz, ``duration`` s) is Gaussian noise plus one event of ``event_duration`` s at a random
time. The class is the kind of event: a **tone burst** (a Hann-windowed sine at a random frequency in
``tone_band``), a **chirp** (frequency sweeping linearly up through ``chirp_band``) or a **click train** (short
decaying clicks every ``click_period`` s, broadband). The same clips come in two views:

- ``synthetic_audio``: the raw waveform ``(N, 1, T)`` (a time series); the mask is the event's time interval.
- ``synthetic_audio_spectrogram``: the log-magnitude spectrogram ``log(1 + |STFT|)`` computed with ``torch.stft``
  (Hann window, ``n_fft``, ``hop``), explained directly as a one-channel image ``(N, 1, F, T')`` (frequency x
  time); the mask is the event's time-frequency box (the frames whose centre lies in the event, the frequency
  bins of its band; clicks span every bin).

Like the planted-motif time series (Ismail et al., 2020) the label depends on the event only, so attributions
outside it are wrong by construction. Deterministic from ``data_seed``; the cell seed only picks the split.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from xaibench.data.base import DatasetSpec
from xaibench.data.synthetic._common import assemble, balanced_labels, require
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality

Event = Literal["tone", "chirp", "clicks"]


@dataclass(frozen=True)
class AudioTask:
    """Generated clips ``(N, 1, T)``, labels ``(N,)``, event ``(start, end)`` sample indices and bands in Hz."""

    waves: np.ndarray
    y: np.ndarray
    spans: np.ndarray  # (N, 2) int: event start, end (exclusive) in samples
    bands: np.ndarray  # (N, 2) float: event frequency band (low, high) in Hz


@dataclass(frozen=True)
class _SyntheticAudio(DatasetSpec):
    """Common generator of both views (see the module docstring).

    Attributes:
        n_samples: clips (classes balanced); sample_rate: Hz; duration, event_duration: seconds.
        events: one class per event kind; noise: std of the background; amplitude: event peak amplitude.
        tone_band, chirp_band: Hz; click_period: seconds between clicks.
        n_fft, hop: STFT size and hop in samples (the spectrogram view; also fix its mask).
        data_seed: seeds the content.
    """

    has_ground_truth: ClassVar[bool] = True
    n_samples: int = 180
    sample_rate: int = 8000
    duration: float = 0.5
    event_duration: float = 0.12
    events: tuple[Event, ...] = ("tone", "chirp", "clicks")
    noise: float = 0.3
    amplitude: float = 1.0
    tone_band: tuple[float, float] = (600.0, 1200.0)
    chirp_band: tuple[float, float] = (1500.0, 3000.0)
    click_period: float = 0.015
    n_fft: int = 128
    hop: int = 64
    data_seed: int = 0

    def generate(self) -> AudioTask:
        self._validate()
        rng = np.random.default_rng(self.data_seed)
        length, event_length = self.length, int(round(self.event_duration * self.sample_rate))
        y = balanced_labels(rng, self.n_samples, len(self.events))
        waves = self.noise * rng.standard_normal((self.n_samples, 1, length))
        spans = np.zeros((self.n_samples, 2), dtype=np.int64)
        bands = np.zeros((self.n_samples, 2))
        for i, label in enumerate(y):
            start = int(rng.integers(0, length - event_length + 1))
            event, band = self._event(self.events[label], event_length, rng)
            waves[i, 0, start : start + event_length] += self.amplitude * event
            spans[i], bands[i] = (start, start + event_length), band
        return AudioTask(waves, y, spans, bands)

    @property
    def length(self) -> int:
        return int(round(self.duration * self.sample_rate))

    def _validate(self) -> None:
        nyquist = self.sample_rate / 2
        require(len(set(self.events)) >= 2, f"dataset {self.name}: need at least two distinct events (one class each)")
        require(0 < self.event_duration < self.duration, f"dataset {self.name}: need 0 < event_duration < duration")
        for band in (self.tone_band, self.chirp_band):
            require(0 < band[0] < band[1] <= nyquist, f"dataset {self.name}: bands must lie in (0, {nyquist}] Hz")
        require(2 <= self.hop <= self.n_fft <= self.length, f"dataset {self.name}: need 2 <= hop <= n_fft <= samples")

    def _event(self, kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
        """One event ``(n,)`` in [-1, 1] and its frequency band (Hz)."""
        t = np.arange(n) / self.sample_rate
        envelope = np.hanning(n)
        if kind == "tone":
            frequency = rng.uniform(*self.tone_band)
            return envelope * np.sin(2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi)), (frequency - 100,
                                                                                             frequency + 100)
        if kind == "chirp":
            low, high = self.chirp_band
            phase = 2 * np.pi * (low * t + 0.5 * (high - low) / t[-1] * t**2)
            return envelope * np.sin(phase), (low, high)
        period = max(1, int(round(self.click_period * self.sample_rate)))
        clicks = np.zeros(n)
        for onset in range(int(rng.integers(0, period)), n, period):
            tail = np.arange(min(16, n - onset))
            clicks[onset : onset + len(tail)] = np.exp(-tail / 3.0) * rng.choice([-1.0, 1.0])
        return clicks, (0.0, self.sample_rate / 2)


@DATASETS.register("synthetic_audio")
@dataclass(frozen=True)
class SyntheticAudio(_SyntheticAudio):
    """Raw waveforms ``(N, 1, T)``; the mask is 1 over the event's samples."""

    modality: ClassVar[Modality] = Modality.TIME_SERIES

    def build(self, seed: int) -> Dataset:
        task = self.generate()
        masks = np.zeros_like(task.waves)
        for i, (start, end) in enumerate(task.spans):
            masks[i, 0, start:end] = 1.0
        return assemble(self.name, self.modality, task.waves, task.y, masks, n_classes=len(self.events),
                        test_size=self.test_size, seed=seed)


@DATASETS.register("synthetic_audio_spectrogram")
@dataclass(frozen=True)
class SyntheticAudioSpectrogram(_SyntheticAudio):
    """Log-magnitude spectrograms ``(N, 1, F, T')`` (``F = n_fft // 2 + 1``); the mask is the event's box."""

    modality: ClassVar[Modality] = Modality.IMAGE

    def build(self, seed: int) -> Dataset:
        task = self.generate()
        spectrograms = log_spectrogram(torch.as_tensor(task.waves[:, 0]), self.n_fft, self.hop).unsqueeze(1)
        n_bins, n_frames = spectrograms.shape[-2:]
        frame_centres = np.arange(n_frames) * self.hop  # torch.stft(center=True): frame k is centred at k * hop
        bin_frequencies = np.arange(n_bins) * self.sample_rate / self.n_fft
        masks = np.zeros(spectrograms.shape)
        for i, ((start, end), (low, high)) in enumerate(zip(task.spans, task.bands)):
            frames = (frame_centres >= start) & (frame_centres < end)
            bins = (bin_frequencies >= low) & (bin_frequencies <= high)
            masks[i, 0] = np.outer(bins, frames)
        return assemble(self.name, self.modality, spectrograms.numpy(), task.y, masks, n_classes=len(self.events),
                        test_size=self.test_size, seed=seed)


def log_spectrogram(waves: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``log(1 + |STFT|)`` of waveforms ``(N, T)`` -> ``(N, n_fft // 2 + 1, 1 + T // hop)`` (Hann window)."""
    window = torch.hann_window(n_fft, dtype=waves.dtype)
    stft = torch.stft(waves, n_fft=n_fft, hop_length=hop, window=window, center=True, return_complex=True)
    return torch.log1p(stft.abs())

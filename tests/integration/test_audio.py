"""Synthetic audio: both views share the clips; IG and occlusion localise the planted event better than random."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from scipy import stats

import xaibench
from xaibench.data.synthetic.audio import log_spectrogram
from xaibench.registry import DATASETS

SMALL = {"n_samples": 90}


def test_views_share_clips_and_masks_mark_the_event():
    wave = DATASETS.create("synthetic_audio", SMALL).build(0)
    spec = DATASETS.create("synthetic_audio_spectrogram", SMALL).build(0)
    suffix = [[i.rsplit("-", 1)[1] for i in d.test.ids] for d in (wave, spec)]
    assert suffix[0] == suffix[1] and wave.test.x.shape[1:] == (1, 4000)  # the same clips, split alike
    assert spec.test.x.shape[1:] == (1, 65, 63)
    torch.testing.assert_close(spec.test.x[:, 0], log_spectrogram(wave.test.x[:, 0].double(), 128, 64).float())
    durations = wave.test.masks.sum(dim=(1, 2)) / 8000
    assert torch.allclose(durations, torch.full_like(durations, 0.12))  # the event's interval, in seconds
    energy_in = (wave.test.x ** 2 * wave.test.masks).sum() / wave.test.masks.sum()
    energy_out = (wave.test.x ** 2 * (1 - wave.test.masks)).sum() / (1 - wave.test.masks).sum()
    assert energy_in > 2 * energy_out  # the event is where the signal is
    tones = spec.test.y == 0
    box_rows = spec.test.masks[tones, 0].amax(dim=2)  # frequency bins of the box, per tone clip
    assert (box_rows.sum(dim=1) < 65 / 2).all()  # a tone's box is a narrow band; a click train's spans every bin
    assert (spec.test.masks[spec.test.y == 2, 0].amax(dim=2).sum(dim=1) == 65).all()
    assert DATASETS.create("synthetic_audio", SMALL).build(0).revision == wave.revision  # deterministic


@pytest.mark.slow
@pytest.mark.parametrize(("model", "dataset", "window"), [("audio_cnn1d", "synthetic_audio", (200, 100)),
                                                          ("spectrogram_cnn", "synthetic_audio_spectrogram", (4, 4))])
def test_ig_and_occlusion_localise_the_event_better_than_random(workdir, model, dataset, window):
    common = [f"model={model}", f"dataset={dataset}", "n_samples=16", "metrics=localisation",
              "~metrics.pointing_game", "~metrics.localisation_auc", "~metrics.top_k_intersection"]
    runs = [["method=integrated_gradients", "method.n_steps=16"],
            ["method=occlusion", f"method.window={window[0]}", f"method.stride={window[1]}"], ["method=random"]]
    table = pd.concat([xaibench.run([*common, *run]) for run in runs], ignore_index=True)
    assert table["model_accuracy"].iloc[0] >= 0.9 and (table["status"] == "ok").all()
    for metric in ("attribution_localisation", "relevance_rank_accuracy"):
        scores = {m: table[(table.metric == metric) & (table.method == m)].sort_values("sample_id")["value"]
                  .to_numpy() for m in ("integrated_gradients", "occlusion", "random")}
        for method in ("integrated_gradients", "occlusion"):
            assert scores[method].mean() > scores["random"].mean(), (metric, method)
            assert stats.wilcoxon(scores[method], scores["random"], alternative="greater").pvalue < 0.01, (metric,
                                                                                                             method)

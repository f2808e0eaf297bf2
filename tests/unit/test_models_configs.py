"""Every dataset and model option composes through Hydra (the root config with ``<group>=<name>``) and instantiates
from the composed section: built-in datasets and zoo models build for real; options that need the user's files
stop with a UserError naming the setting to give."""
from __future__ import annotations

import functools

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from xaibench.config.paths import conf_dir, group_options
from xaibench.engine.cell import split_name
from xaibench.errors import UserError
from xaibench.registry import DATASETS, MODELS
from xaibench.types import Dataset, Modality

# Options whose build reads the user's files: without them, the error must say which setting to give.
NEEDS_USER_FILES = {
    ("dataset", "csv_table"): "dataset.path",
    ("dataset", "npz_arrays"): "dataset.path",
    ("dataset", "image_folder"): "dataset.path",
    ("dataset", "text_csv"): "dataset.path",
    ("model", "torch_module"): "model.target",
    ("model", "hf_sequence_classifier"): "model.path",
    ("model", "hf_image_classifier"): "model.path",
}
# One dataset per modality for building models (small to keep the test fast).
PROBE_DATASETS = {
    Modality.TABULAR: ("synthetic_tabular", {"n_samples": 60}),
    Modality.IMAGE: ("digits", {}),
    Modality.TIME_SERIES: ("synthetic_timeseries", {"n_samples": 30}),
    Modality.TEXT: ("synthetic_text", {"n_samples": 30}),
}
OPTIONS = [(group, name) for group in ("dataset", "model") for name in group_options(group)]


def composed_section(group: str, name: str) -> dict:
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"{group}={name}"])
    return OmegaConf.to_container(cfg[group], resolve=True)


@functools.lru_cache(maxsize=None)
def probe_dataset(modality: Modality) -> Dataset:
    name, params = PROBE_DATASETS[modality]
    return DATASETS.create(name, params).build(seed=0)


def test_the_option_lists_match_the_registries():
    assert group_options("dataset") == DATASETS.names() and group_options("model") == MODELS.names()


@pytest.mark.parametrize(("group", "name"), OPTIONS)
def test_every_dataset_and_model_composes_and_instantiates(group, name):
    registry = DATASETS if group == "dataset" else MODELS
    option, params = split_name(composed_section(group, name), group)
    assert option == name
    spec = registry.create(name, params)
    if (group, name) in NEEDS_USER_FILES:
        target = probe_dataset(Modality.TEXT if "sequence" in name else Modality.IMAGE if "image" in name else
                               Modality.TABULAR)
        with pytest.raises(UserError, match=NEEDS_USER_FILES[(group, name)]):
            spec.build(0) if group == "dataset" else spec.build(target)
        return
    if group == "dataset":
        dataset = spec.build(0)
        assert dataset.modality is spec.modality and len(dataset.train) > len(dataset.test) > 0
        assert len(set(dataset.train.ids + dataset.test.ids)) == len(dataset.train) + len(dataset.test)
        assert dataset.has_ground_truth == spec.has_ground_truth and len(dataset.revision) == 16
        if dataset.has_ground_truth:
            assert dataset.test.masks.shape == dataset.test.x.shape
        return
    for modality in spec.modalities:
        dataset = probe_dataset(modality)
        torch.manual_seed(0)
        module = spec.build(dataset)
        if name == "sklearn_estimator":
            module = spec.fit(module, dataset, seed=0)
        with torch.no_grad():
            assert module.eval()(dataset.test.x[:4]).shape == (4, dataset.n_classes)

"""A plugin's helper modules in its fingerprints: a method plugin (``$XAIBENCH_PLUGINS``) that imports the user's
own helper module is fingerprinted with it (``engine/plugin_code.py`` reusing ``models/adapters/_local_modules.py``):
editing the helper changes the cell key and the method's explanation (stage) key, editing an unrelated file of the
project changes neither. Before, only the plugin's defining file was hashed, and an edited helper served the
explanations of its old code from the store.
"""
from __future__ import annotations

import hashlib
import importlib
import sys

import pytest

from xaibench import registry
from xaibench.engine.cell import CellSpec
from xaibench.engine.plugin_code import code_digest_of, module_file_digest

PLUGIN = '''
from dataclasses import dataclass

from byo24_helpers import scale

from xaibench.explainers.base import DENSE_MODALITIES, Explainer
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation


@EXPLAINERS.register("byo24_scaled_input")
@dataclass(frozen=True)
class ScaledInput(Explainer):
    """The input times the helper's scale."""

    modalities = DENSE_MODALITIES

    def explain(self, model, x, target):
        return Explanation(scale(x))
'''
HELPERS = "from byo24_constants import FACTOR\n\n\ndef scale(x):\n    return FACTOR * x\n"
MODULES = ("byo24_plugin", "byo24_helpers", "byo24_constants", "byo24_unrelated")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """``byo24_plugin`` (a method) imports ``byo24_helpers``, which imports ``byo24_constants``; ``byo24_unrelated``
    lies next to them, imported by nothing. Registered for the test only."""
    files = {"byo24_plugin.py": PLUGIN, "byo24_helpers.py": HELPERS, "byo24_constants.py": "FACTOR = 2.0\n",
             "byo24_unrelated.py": "NOTE = 1\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.load_plugins()  # the package's own first (before $XAIBENCH_PLUGINS names the plugin: the real
    # registry must never hold it), so the copy below holds them and the plugin goes into the copy only
    monkeypatch.setattr(registry.EXPLAINERS, "_entries", dict(registry.EXPLAINERS._entries))  # restored after
    monkeypatch.setenv("XAIBENCH_PLUGINS", "byo24_plugin")
    module = importlib.import_module("byo24_plugin")
    yield tmp_path, module.ScaledInput
    for name in MODULES:
        sys.modules.pop(name, None)


def keys() -> tuple[str, str]:
    """The cell key and the plugin method's explanation-stage key of one cell."""
    cell = CellSpec(model={"name": "mlp"}, dataset={"name": "iris"}, method={"name": "byo24_scaled_input"},
                    metrics={"sparseness": {}}, n_samples=2)
    return cell.key, cell.explanation_key("a-model-key")


def test_editing_a_plugins_helper_changes_its_keys_and_an_unrelated_file_does_not(plugin):
    """The old keys held ``byo24_plugin.py``'s sha256 alone: the helper two imports away was not in them."""
    folder, method = plugin
    first = keys()
    assert keys() == first  # deterministic
    (folder / "byo24_unrelated.py").write_text("NOTE = 'edited, longer'\n")
    assert keys() == first
    (folder / "byo24_constants.py").write_text("FACTOR = -3.25\n")  # imported by the helper, not by the plugin
    second = keys()
    assert second[0] != first[0] and second[1] != first[1]
    (folder / "byo24_helpers.py").write_text(HELPERS.replace("FACTOR * x", "FACTOR * x * x"))
    third = keys()
    assert third[0] not in (first[0], second[0]) and third[1] not in (first[1], second[1])
    assert code_digest_of(method) != hashlib.sha256((folder / "byo24_plugin.py").read_bytes()).hexdigest()


def test_a_plugin_importing_no_helper_keeps_the_sha256_of_its_file(tmp_path, monkeypatch):
    """Plugins without helpers keep their keys: the fingerprint is the file's sha256, as before."""
    (tmp_path / "byo24_alone.py").write_text("import math\n\nimport torch\n\nimport xaibench\n\nVALUE = math.pi\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert module_file_digest("byo24_alone") == hashlib.sha256((tmp_path / "byo24_alone.py").read_bytes()).hexdigest()


MODEL_PLUGIN = '''
from dataclasses import dataclass

from byo24_rates import LR

from xaibench.models.zoo.logreg import LogisticRegression
from xaibench.registry import MODELS


@MODELS.register("byo24_logreg")
@dataclass(frozen=True)
class RatedLogreg(LogisticRegression):
    """The zoo's logreg with the helper's learning rate."""

    lr: float = LR
'''


@pytest.fixture
def model_plugin(tmp_path, monkeypatch):
    """``byo24_model_plugin`` (a model) takes its learning rate from ``byo24_rates``."""
    files = {"byo24_model_plugin.py": MODEL_PLUGIN, "byo24_rates.py": "LR = 0.02\n", "byo24_unrelated.py": "NOTE = 1\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.load_plugins()  # before $XAIBENCH_PLUGINS names the plugin (see ``plugin``)
    monkeypatch.setattr(registry.MODELS, "_entries", dict(registry.MODELS._entries))  # restored after
    monkeypatch.setenv("XAIBENCH_PLUGINS", "byo24_model_plugin")
    importlib.import_module("byo24_model_plugin")
    yield tmp_path
    for name in ("byo24_model_plugin", "byo24_rates", "byo24_unrelated"):
        sys.modules.pop(name, None)


def test_editing_a_model_plugins_helper_trains_it_again(model_plugin):
    """The cell ran again after the helper's edit (the cell key holds the plugin modules' digests), but the model
    stage's key held no plugin code: the model trained with the old learning rate was loaded from the store."""
    from xaibench.engine.runner import run_cell
    from xaibench.engine.store import Store

    store = Store(model_plugin / "store")
    cell = CellSpec(model={"name": "byo24_logreg", "epochs": 2}, dataset={"name": "iris"},
                    method={"name": "saliency"}, metrics={"sparseness": {}}, n_samples=2)
    assert not run_cell(cell, store).cached and len(store.files("models")) == 1
    (model_plugin / "byo24_unrelated.py").write_text("NOTE = 'edited, longer'\n")
    assert run_cell(cell, store).cached
    (model_plugin / "byo24_rates.py").write_text("LR = 0.5\n")
    assert not run_cell(cell, store).cached
    assert len(store.files("models")) == 2  # trained again with the new rate

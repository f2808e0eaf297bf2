"""Your own model's helper modules in its fingerprint: a torch model class (``model.target``) or an own estimator
class (``model.estimator``) is fingerprinted with the user's modules its file imports, transitively (not installed
libraries, the standard library or xaibench): editing a helper recomputes the cell, editing an unrelated file does
not.
"""
from __future__ import annotations

import sys

import pytest

from xaibench.engine.cell import CellSpec
from xaibench.engine.runner import run_cell
from xaibench.engine.store import Store
from xaibench.models.adapters._local_modules import local_imports
from xaibench.models.adapters._source import code_digest, own_code_digest, path_digest

NETS = '''
import math

import torch
from torch import nn

import blocks
from settings import WIDTH


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = blocks.body(4, WIDTH)
        self.head = nn.Linear(WIDTH, 3)

    def forward(self, x):
        return self.head(self.body(x)) * math.sqrt(1.0)
'''
BLOCKS = '''
from torch import nn

from activations import make_activation


def body(inputs, width):
    return nn.Sequential(nn.Linear(inputs, width), make_activation())
'''
ACTIVATIONS = '''
from torch import nn


def make_activation():
    return nn.ReLU()
'''
ESTIMATORS = '''
from sklearn.linear_model import LogisticRegression

from settings import C


class Tuned(LogisticRegression):
    def __init__(self, max_iter=500):
        super().__init__(C=C, max_iter=max_iter)
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's project: ``nets.py`` imports ``blocks`` (which imports ``activations``) and ``settings``; ``notes.py``
    is imported by nothing. On ``sys.path``, its modules forgotten afterwards."""
    files = {"nets.py": NETS, "blocks.py": BLOCKS, "activations.py": ACTIVATIONS, "settings.py": "WIDTH = 5\nC = 1.0\n",
             "notes.py": "TODO = 1\n", "ests.py": ESTIMATORS}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("blocks", "activations", "settings", "notes", "nets", "ests"):
        sys.modules.pop(name, None)


def test_the_class_files_local_imports_are_found_transitively(project):
    """``nets`` imports ``blocks`` and ``settings``; ``blocks`` imports ``activations``. ``math``, ``torch`` (the
    standard library, an installed library) and ``notes`` (not imported) are not the model's code."""
    import nets

    found = local_imports(project / "nets.py", nets.__name__)
    assert found == {"activations": (project / "activations.py").resolve(), "blocks": (project / "blocks.py").resolve(),
                     "settings": (project / "settings.py").resolve()}


@pytest.mark.parametrize("target", ["./nets.py:Net", "nets.Net"])
def test_editing_a_helper_changes_the_fingerprint_and_an_unrelated_file_does_not(project, target):
    """The old fingerprint was the defining file's sha256 alone: an edited helper served the old cells."""
    first = code_digest(target)
    assert first == code_digest(target)  # deterministic
    assert first != path_digest(project / "nets.py")  # the helpers are in it
    (project / "notes.py").write_text("TODO = 2\n")
    assert code_digest(target) == first
    (project / "activations.py").write_text(ACTIVATIONS.replace("nn.ReLU()", "nn.Tanh()"))  # two imports away
    second = code_digest(target)
    assert second != first
    (project / "settings.py").write_text("WIDTH = 6\nC = 1.0\n")
    assert code_digest(target) not in (first, second)


def test_a_file_importing_no_helper_keeps_its_fingerprint(project):
    """Keys of model files that import no module of the user's are what they were: the file's sha256."""
    (project / "alone.py").write_text("from torch import nn\n\n\nclass Net(nn.Linear):\n    pass\n")
    assert code_digest("./alone.py:Net") == path_digest(project / "alone.py")


def test_an_own_estimators_helper_is_fingerprinted(project):
    first = own_code_digest("./ests.py:Tuned", "model.estimator")
    (project / "notes.py").write_text("TODO = 3\n")
    assert own_code_digest("./ests.py:Tuned", "model.estimator") == first
    (project / "settings.py").write_text("WIDTH = 5\nC = 0.01\n")
    assert own_code_digest("./ests.py:Tuned", "model.estimator") != first


def test_editing_a_helper_reruns_the_cell(project):
    """The cell was served from the store after ``activations.py`` changed (the key held ``nets.py``'s digest only)."""
    store = Store(project / "store")
    cell = CellSpec(model={"name": "torch_module", "target": "./nets.py:Net", "epochs": 1}, dataset={"name": "iris"},
                    method={"name": "saliency"}, metrics={"sparseness": {}}, n_samples=2)
    assert not run_cell(cell, store).cached
    (project / "notes.py").write_text("TODO = 4\n")
    assert run_cell(cell, store).cached  # an unrelated file: from the store
    (project / "activations.py").write_text(ACTIVATIONS.replace("nn.ReLU()", "nn.Tanh()"))
    assert not run_cell(cell, store).cached
    assert run_cell(cell, store).cached


def test_a_helper_imported_in_forward_is_in_the_fingerprint_before_and_after_forward_runs(project):
    """``from helpers.scale import double`` inside ``forward``: before forward ran, ``helpers`` was not imported and
    ``helpers.scale`` was skipped (finding it would import its package); after, it was in ``sys.modules`` and in
    the fingerprint: the same model's key changed within one process (an in-process sweep's next job missed the
    store). Found without importing now, with the package's ``__init__.py`` (``from a.b import c`` runs ``a``)."""
    import torch

    (project / "helpers").mkdir()
    (project / "helpers" / "__init__.py").write_text("")
    (project / "helpers" / "scale.py").write_text("def double(x):\n    return 2 * x\n")
    (project / "lazy.py").write_text("from torch import nn\n\n\nclass Net(nn.Linear):\n    def forward(self, x):\n"
                                     "        from helpers.scale import double\n\n        return double(x)\n")
    try:
        before = code_digest("lazy.Net")
        assert "helpers" not in sys.modules
        import lazy

        assert torch.equal(lazy.Net(1, 1)(torch.ones(1)), torch.full((1,), 2.0))
        assert code_digest("lazy.Net") == before
        assert local_imports(project / "lazy.py", "lazy") == {
            "helpers": (project / "helpers" / "__init__.py").resolve(),
            "helpers.scale": (project / "helpers" / "scale.py").resolve()}
        (project / "helpers" / "scale.py").write_text("def double(x):\n    return x + x\n")
        assert code_digest("lazy.Net") != before
    finally:
        for name in ("lazy", "helpers", "helpers.scale"):
            sys.modules.pop(name, None)

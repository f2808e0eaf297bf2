"""Bring your own, as a user keeps it: a model file beside the data (not an installed package), a network written
with ``F.relu``, a network of plain layers for LRP, series saved time-major, and phone photos rotated by EXIF.
Each works with values checked analytically or against captum, or is refused / not_applicable in one line.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import xaibench
from xaibench.errors import UserError
from xaibench.registry import DATASETS, EXPLAINERS, MODELS

NETS = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, hidden: int = 8):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def forward(self, x):
        return self.layers(x)
'''


# A model file given by its path --------------------------------------------------------------------------------
def test_a_model_file_given_by_its_path_is_imported_and_its_edits_recompute(tmp_path, monkeypatch):
    """``model.target=<file.py>:<Class>`` (absolute or relative) was refused ("is not an import path"); now the file
    is imported as it is, two ``nets.py`` in two folders stay apart, and an edit changes the model's revision."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(NETS)
    (tmp_path / "other").mkdir()
    biasless = NETS.replace("nn.Linear(hidden, 3)", "nn.Linear(hidden, 3, bias=False)")
    (tmp_path / "other" / "nets.py").write_text(biasless)
    iris = DATASETS.create("iris", {}).build(0)
    relative = MODELS.create("torch_module", {"target": "nets.py:Net", "epochs": 1, "kwargs": {"hidden": 5}})
    module = relative.build(iris)
    assert type(module).__name__ == "Net" and module.layers[0].out_features == 5
    absolute = MODELS.create("torch_module", {"target": f"{tmp_path / 'nets.py'}:Net", "epochs": 1})
    assert type(absolute.build(iris)) is type(module)  # the same file: imported once
    other = MODELS.create("torch_module", {"target": "other/nets.py:Net", "epochs": 1}).build(iris)
    assert other.layers[2].bias is None and type(other) is not type(module)
    assert MODELS.create("torch_module", {"target": "nets:Net", "epochs": 1}).target == "nets:Net"
    before = relative.source_revision()
    (tmp_path / "nets.py").write_text(NETS.replace("nn.ReLU()", "nn.Tanh()"))
    assert relative.source_revision() != before  # the store key of the model changes with the file
    assert isinstance(relative.build(iris).layers[1], nn.Tanh)  # and the edit is what runs
    refusals = {
        "nets.py": "model.target='nets.py' names no class; write model.target=nets.py:Net (the file and its class), "
                   "or model.target=nets.Net with its folder importable",
        "nets.py:Nett": "cannot import model.target='nets.py:Nett': nets.py has no 'Nett'; did you mean "
                        "model.target=nets.py:Net?",
        "missing.py:Net": "model.target: file not found: missing.py (relative paths start at",
        "other/nets:Net": "model.target='other/nets:Net' is not <file.py>:<Class>; write "
                          "model.target=other/nets.py:Net",
    }
    for target, expected in refusals.items():
        with pytest.raises(UserError) as refused:
            MODELS.create("torch_module", {"target": target, "epochs": 1}).build(iris)
        assert expected in str(refused.value) and "\n" not in str(refused.value), target


def test_a_model_file_that_fails_to_import_is_named_in_one_line(tmp_path, monkeypatch):
    (tmp_path / "helpers.py").write_text("SCALE = 2\n")
    (tmp_path / "nets.py").write_text("from helpers import SCALE\n" + NETS)
    (tmp_path / "broken.py").write_text("class Net(:\n")
    iris = DATASETS.create("iris", {}).build(0)
    with pytest.raises(UserError, match=r"cannot import model.target file .*nets.py: ModuleNotFoundError: No module "
                                        r"named 'helpers'; helpers lies beside it: export PYTHONPATH="):
        MODELS.create("torch_module", {"target": f"{tmp_path}/nets.py:Net", "epochs": 1}).build(iris)
    with pytest.raises(UserError, match=r"cannot import model.target file .*broken.py: SyntaxError"):
        MODELS.create("torch_module", {"target": f"{tmp_path}/broken.py:Net", "epochs": 1}).build(iris)
    monkeypatch.chdir(tmp_path)  # the file here but not on sys.path: both spellings that work are named
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    (tmp_path / "plain.py").write_text(NETS)
    with pytest.raises(UserError, match=r"No module named 'plain'; plain is in .* but not importable: write "
                                        r"model.target=plain.py:Net \(the file and its class\), or export PYTHONPATH"):
        MODELS.create("torch_module", {"target": "plain.Net", "epochs": 1}).build(iris)


# DeepLIFT and guided backprop on functional nonlinearities ----------------------------------------------------
class Hinge(nn.Module):
    """``h = relu(x - 1)``, logits ``(h, -h)`` of one input: DeepLIFT from baseline 0 at ``x = 3`` gives
    ``relu(2) - relu(-1) = 2`` (the Rescale rule), gradient x input gives ``1 * 3 = 3``."""

    def __init__(self, functional: str = "") -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.relu = nn.ReLU()
        self.functional = functional
        with torch.no_grad():
            self.linear.weight.fill_(1.0)
            self.linear.bias.fill_(-1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x)
        h = {"": self.relu, "F.relu": F.relu, "method": torch.Tensor.relu, "sigmoid": torch.sigmoid}[self.functional](z)
        return torch.cat([h, -h], dim=1)


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap", "guided_backprop"])
def test_functional_relus_make_hooked_methods_not_applicable_instead_of_plain_gradients(method):
    x, target = torch.tensor([[3.0]]), torch.tensor([0])
    params = {"n_baselines": 2, "baseline_std": 0.0} if method == "deeplift_shap" else {}
    module = xaibench.explain(Hinge(), x, method=method, targets=target, explain_output="logit", **params)
    expected = 2.0 if method.startswith("deeplift") else 1.0  # Rescale: (relu(2) - relu(-1)); guided: gradient 1
    torch.testing.assert_close(torch.as_tensor(module), torch.tensor([[expected]]))
    for functional in ("F.relu", "method"):  # the old code returned 3.0 (DeepLIFT) under the method's name
        with pytest.raises(xaibench.NotApplicable, match=r"calls relu as (a function|functions) \(F.relu, x.relu"):
            xaibench.explain(Hinge(functional), x, method=method, targets=target, explain_output="logit", **params)


class CountedHinge(Hinge):
    """:class:`Hinge` that records each forward's batch size (in a list: no setting of its own)."""

    def __init__(self, functional: str = "") -> None:
        super().__init__(functional)
        self.forwards: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.forwards.append(len(x))
        return super().forward(x)


def test_the_look_for_functional_nonlinearities_runs_once_per_model_and_again_when_it_changes():
    """The one-sample look (``module_calls.remembered``) is remembered per model and method: a
    metric's re-explanations do not pay it again; a changed setting, hook or model is looked at again."""
    x, target = torch.tensor([[3.0], [2.0]]), torch.tensor([0, 0])
    model = CountedHinge()
    maps = [xaibench.explain(model, x, method="guided_backprop", targets=target, explain_output="logit")
            for _ in range(3)]
    assert model.forwards.count(1) == 1  # the look runs one sample, once (was once per call); the others: 2 rows
    assert all(np.array_equal(maps[0], m) for m in maps)
    for _ in range(2):
        xaibench.explain(model, x, method="deeplift", targets=target, explain_output="logit")
    assert model.forwards.count(1) == 2  # another method's rule: looked at once for it
    model.functional = "F.relu"  # the same object, now calling relu as a function
    with pytest.raises(xaibench.NotApplicable, match=r"calls relu as a function"):
        xaibench.explain(model, x, method="guided_backprop", targets=target, explain_output="logit")
    model.functional = ""
    handle = model.linear.register_forward_hook(lambda _m, _args, out: F.relu(out))  # a hook that adds F.relu
    with pytest.raises(xaibench.NotApplicable, match=r"calls relu as a function"):
        xaibench.explain(model, x, method="guided_backprop", targets=target, explain_output="logit")
    handle.remove()
    other = CountedHinge()
    xaibench.explain(other, x, method="guided_backprop", targets=target, explain_output="logit")
    assert other.forwards.count(1) == 1  # a new model is looked at


def test_deeplift_names_every_functional_nonlinearity_it_has_a_rule_for():
    class Pooled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(1, 2, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = F.max_pool1d(torch.sigmoid(self.conv(x)), 2)
            return F.softmax(h.flatten(1)[:, :2], dim=1).log() + F.relu(h).sum() * 0

    with pytest.raises(xaibench.NotApplicable, match=r"calls max_pool1d, relu, sigmoid as functions"):
        xaibench.explain(Pooled(), torch.randn(2, 1, 8), method="deeplift", explain_output="logit")
    assert xaibench.explain(Hinge("sigmoid"), torch.tensor([[3.0]]), method="guided_backprop").shape == (1, 1)


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap"])
def test_a_nonlinearity_module_used_twice_is_not_applicable_naming_it(method):
    """newuser18: ``self.act = nn.ReLU()`` applied after two layers made DeepLIFT an error cell (captum: "A Module
    ReLU() was detected that does not contain some of the input/output attributes"), failing the sweep; it is now
    not_applicable, naming the module as the user's model names it. One module per use still explains."""
    class Reused(nn.Module):
        def __init__(self, shared: bool) -> None:
            super().__init__()
            self.block = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
            self.hidden, self.out = nn.Linear(4, 4), nn.Linear(4, 2)
            self.act = self.block[1] if shared else nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.act(self.hidden(self.block(x))))

    torch.manual_seed(0)
    x = torch.randn(3, 3)
    params = {"n_baselines": 2} if method == "deeplift_shap" else {}
    with pytest.raises(xaibench.NotApplicable, match=r"forward calls block\.1 \(nn\.ReLU\) twice each or more; "
                                                     r"give each use its own module"):
        xaibench.explain(Reused(shared=True), x, method=method, **params)
    assert np.isfinite(xaibench.explain(Reused(shared=False), x, method=method, **params)).all()

def test_a_sweep_records_functional_relus_as_not_applicable_with_the_reason(tmp_path, monkeypatch):
    """A relative ``target``: the model's seeds derive from its config, so an absolute tmp path drew new weights
    each run, and about one in nine made guided backprop's map all zero on both samples (status ``nan``)."""
    from xaibench.engine.cell import CellSpec
    from xaibench.engine.runner import run_cell
    from xaibench.engine.store import Store

    monkeypatch.chdir(tmp_path)
    (tmp_path / "modules.py").write_text(NETS)
    (tmp_path / "functional.py").write_text(NETS.replace("return self.layers(x)",
                                                         "return self.layers[2](torch.relu(self.layers[0](x)))"))
    for method in ("deeplift", "guided_backprop"):
        statuses = {}
        for file in ("modules", "functional"):
            cell = CellSpec(model={"name": "torch_module", "target": f"{file}.py:Net", "epochs": 2},
                            dataset={"name": "iris"}, method={"name": method}, metrics={"sparseness": {}}, n_samples=2)
            rows = run_cell(cell, Store(tmp_path / "store")).rows
            statuses[file] = set(rows["status"])
            if file == "functional":
                assert rows["message"].str.contains("calls relu as a function|calls relu as functions").all()
        assert statuses == {"modules": {"ok"}, "functional": {"not_applicable"}}, method


def test_no_zoo_model_calls_a_nonlinearity_as_a_function():
    """The checks leave every built-in model as it was (its stored scores unchanged), whatever the explained output
    (the output transforms are the suite's own functions), and restore the forward counter; DeepLIFT's refuses the
    transformers for what no DeepLIFT rule crosses (their LayerNorms and attention products), not a function."""
    from xaibench.engine.counting import ForwardCounter
    from xaibench.explainers.gradient._hooks import refuse_functional_deeplift, refuse_functional_relu
    from xaibench.explainers.inputs import GradientView
    from xaibench.explainers.output import explained_output
    from xaibench.explainers.output_rules import split_output
    from xaibench.explainers.propagation.lrp import refuse_unsupported
    from xaibench.types import Capability

    pairs = [("mlp", "iris"), ("logreg", "iris"), ("least_squares", "iris"), ("cnn", "digits"),
             ("cnn1d", "synthetic_timeseries"), ("vit", "digits"), ("text_transformer", "synthetic_text"),
             ("audio_cnn1d", "synthetic_audio"), ("spectrogram_cnn", "synthetic_audio_spectrogram")]
    for model_name, data_name in pairs:
        data = DATASETS.create(data_name, {}).build(0)
        spec = MODELS.create(model_name, {})
        torch.manual_seed(0)
        model = spec.build(data).eval()
        for kind in ("logit", "log_odds", "log_softmax", "probability"):
            counter = ForwardCounter(model)
            explained = explained_output(counter, kind)  # what the engine gives an explainer
            logits, _ = split_output(explained)  # what DeepLIFT and LRP run their rules on
            view = GradientView.of(logits, data.test.x[:2])
            if model_name in ("vit", "text_transformer"):  # LayerNorm, attention products: no DeepLIFT rule
                with pytest.raises(xaibench.NotApplicable, match=r"computes layer_norm \(5x\), matmul\(x, y\) \(4x\) "):
                    refuse_functional_deeplift(view.forward, view.inputs, "deeplift")
            else:
                refuse_functional_deeplift(view.forward, view.inputs, "deeplift")
            whole = GradientView.of(explained, data.test.x[:2])  # guided backprop sees the transform too
            refuse_functional_relu(whole.forward, whole.inputs, "guided_backprop")
            if Capability.LRP in spec.capabilities:
                refuse_unsupported(logits, data.test.x[:2])
            assert (counter.calls, counter.rows, counter.largest) == (0, 0, 0), model_name


# LRP on your own network ---------------------------------------------------------------------------------------
class PlainCnn(nn.Module):
    """Layers captum's LRP has rules for, with a functional ReLU and a reshape between them."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(3 * 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.pool(F.relu(self.conv(x)))))


class ModuleReluCnn(PlainCnn):
    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.relu(self.conv(x))).view(len(x), -1))


def test_lrp_runs_on_your_own_network_of_supported_layers_as_captum_computes_it():
    from captum.attr import LRP
    from captum.attr._utils.lrp_rules import EpsilonRule

    from xaibench.data.sklearn_sets import Digits
    from xaibench.engine.applicability import cell_not_applicable

    spec = MODELS.create("torch_module", {"target": f"{__name__}.PlainCnn", "epochs": 1})
    assert cell_not_applicable(spec, Digits(), EXPLAINERS.create("lrp", {})) is None  # was "needs lrp"
    torch.manual_seed(0)
    net, x = PlainCnn().eval(), torch.rand(3, 1, 8, 8)
    target = net(x).argmax(1)
    net.flatten.rule = EpsilonRule()  # captum has no default rule for Flatten; it passes relevance on unchanged
    expected = LRP(net).attribute(x.clone().requires_grad_(True), target=target).detach()
    attributions = xaibench.explain(net, x, method="lrp", targets=target, explain_output="logit")
    torch.testing.assert_close(torch.as_tensor(attributions), expected, rtol=1e-5, atol=1e-7)
    modules = ModuleReluCnn().eval()
    modules.load_state_dict(net.state_dict())  # the same network with an nn.ReLU: the same relevance
    torch.testing.assert_close(torch.as_tensor(xaibench.explain(modules, x, method="lrp", targets=target,
                                                                explain_output="logit")), expected,
                               rtol=1e-5, atol=1e-7)


def test_lrp_is_not_applicable_where_no_rule_would_cross():
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner, self.out = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(x + torch.relu(self.inner(x)))

    x = torch.randn(2, 4)
    with pytest.raises(xaibench.NotApplicable, match=r"lrp propagates relevance through layers \(modules\) only, but "
                                                     r"this model's forward computes add outside them"):
        xaibench.explain(Residual(), x, method="lrp")
    gelu = nn.Sequential(nn.Linear(4, 3), nn.GELU(), nn.Linear(3, 2))
    with pytest.raises(UserError, match="method lrp needs lrp, which this model does not offer"):
        xaibench.explain(gelu, x, method="lrp")  # the API sees the layers before explaining
    with pytest.raises(xaibench.NotApplicable, match="lrp has no rule for layer type.*GELU"):
        EXPLAINERS.create("lrp", {}).explain(gelu, x, torch.tensor([0, 1]))


# Time series saved time-major -----------------------------------------------------------------------------------
class SeriesNet(nn.Module):
    """A 1-D CNN for 3-channel series ``(N, 3, T)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.conv(x)).flatten(1))


def test_series_saved_time_major_are_named_with_the_expected_layout(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3, 16)), np.arange(20) % 2
    np.savez(tmp_path / "ntc.npz", x=x.transpose(0, 2, 1), y=y)  # (N, T, C), as pandas and Keras keep them
    spec = {"path": str(tmp_path / "ntc.npz"), "modality": "time_series"}
    data = DATASETS.create("npz_arrays", spec).build(0)
    assert capsys.readouterr().err.strip() == (
        "xaibench: warning: dataset npz_arrays: x has shape (20, 16, 3), more channels than time steps: series are "
        "read as (C, T) = (channels, time steps): (16, 3) is 16 channel(s) of 3 time step(s); if yours are (T, C), "
        "store x.transpose(0, 2, 1), giving (3, 16) per sample")
    with pytest.raises(UserError) as refused:
        MODELS.create("torch_module", {"target": f"{__name__}.SeriesNet", "epochs": 1}).build(data)
    assert str(refused.value).endswith(
        ", 16, 3] to have 3 channels, but got 16 channels instead; series are read as (C, T) = (channels, time "
        "steps): (16, 3) is 16 channel(s) of 3 time step(s); if yours are (T, C), store x.transpose(0, 2, 1), giving "
        "(3, 16) per sample")
    with pytest.raises(UserError, match=r"series of length 3 too short for 2 pooling stages; series are read as "
                                        r"\(C, T\) = \(channels, time steps\): \(16, 3\) is 16 channel"):
        MODELS.create("cnn1d", {}).build(data)
    np.savez(tmp_path / "nct.npz", x=x, y=y)
    right = DATASETS.create("npz_arrays", {**spec, "path": str(tmp_path / "nct.npz")}).build(0)
    MODELS.create("torch_module", {"target": f"{__name__}.SeriesNet", "epochs": 1}).build(right)
    assert capsys.readouterr().err == ""


# Photos rotated by EXIF ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_an_exif_orientation_is_applied_when_images_are_read(tmp_path, suffix):
    from PIL import Image

    from xaibench.data.user.image_folder import read_image

    stored = np.zeros((8, 8), np.uint8)
    stored[:4, 4:] = 255  # bright top-right quadrant as the sensor stored it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as a phone held upright writes it
    Image.fromarray(stored).save(tmp_path / f"phone.{suffix}", exif=exif.tobytes())
    pixels, _ = read_image(tmp_path / f"phone.{suffix}", 8, 1)
    upright = np.rot90(stored / 255.0, k=-1)  # turned clockwise, as viewers show it: the bright quadrant bottom-right
    np.testing.assert_allclose(pixels[0], upright, rtol=0, atol=0 if suffix == "png" else 0.1)
    plain = Path(tmp_path / f"plain.{suffix}")
    Image.fromarray(stored).save(plain)  # no tag: as stored
    np.testing.assert_allclose(read_image(plain, 8, 1)[0][0], stored / 255.0, rtol=0,
                               atol=0 if suffix == "png" else 0.1)


# One module called at several places ----------------------------------------------------------------------------
class TwiceUsedModules(nn.Module):
    """The PyTorch tutorial's CNN layout: one ``nn.ReLU`` and one ``nn.MaxPool2d`` module, each called after both
    convolutions. Input ``(N, 1, 8, 8)``; logits ``(N, 3)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.relu, self.pool = nn.ReLU(), nn.MaxPool2d(2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


@pytest.mark.parametrize(("method", "named"), [("deeplift", "pool (nn.MaxPool2d), relu (nn.ReLU)"),
                                               ("deeplift_shap", "pool (nn.MaxPool2d), relu (nn.ReLU)"),
                                               ("lrp", "pool (nn.MaxPool2d)")])
def test_a_module_called_twice_is_not_applicable_where_captum_keeps_one_state_per_module(method, named):
    """review18: captum's DeepLIFT and LRP keep one set of activations per module and raise a RuntimeError on a
    module called twice (a shared ``self.pool``, as the PyTorch tutorial writes it): the cell was an ``error``, and
    since ``torch_module`` declares LRP every such own network's lrp cell too. It is ``not_applicable``, naming the
    modules and the fix. (LRP passes a shared ``nn.ReLU``'s relevance unchanged: only the pooling is named.)"""
    torch.manual_seed(0)
    net, x = TwiceUsedModules().eval(), torch.randn(2, 1, 8, 8)
    with pytest.raises(xaibench.NotApplicable, match=rf"method {method} keeps one state per module, but this model's "
                                                     rf"forward calls {re.escape(named)} twice each"):
        EXPLAINERS.create(method, {}).explain(net, x, torch.tensor([0, 1]))
    EXPLAINERS.create("guided_backprop", {}).explain(net, x, torch.tensor([0, 1]))  # its hooks keep no state


def test_the_look_at_a_forward_leaves_a_training_models_statistics_and_the_rng_as_they_were():
    """review18: the hooked methods' look at the forward (``module_calls.calls_outside``) ran one more forward as the
    model was: a model in training mode (an explainer called directly, outside the suite's ``eval()``) had its batch
    norm's running statistics moved and its dropout drew from torch's global RNG, so the explanation that followed
    saw another model and another stream. The look runs in eval mode, on a forked RNG; the model keeps its mode."""
    from xaibench.explainers.gradient._hooks import refuse_functional_relu

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 2)).train()
    x = torch.randn(5, 4)
    mean, var = net[1].running_mean.clone(), net[1].running_var.clone()
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    refuse_functional_relu(net, x, "guided_backprop")  # modules only: nothing to refuse
    assert torch.equal(torch.rand(3), expected)
    assert torch.equal(net[1].running_mean, mean) and torch.equal(net[1].running_var, var)
    assert int(net[1].num_batches_tracked) == 0 and all(module.training for module in net.modules())

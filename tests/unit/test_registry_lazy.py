"""Each registry imports only its own plugin package (and ``$XAIBENCH_PLUGINS``) at its first lookup.

perf24 (issue 11): the first lookup in any registry imported every plugin module of every axis, so ``xaibench
report``, which only rebuilds datasets for its galleries, imported Quantus (and with it captum, scipy.stats):
~0.4 CPU-s of every report process. Now DATASETS imports ``xaibench.data`` alone, EXPLAINERS
``xaibench.explainers`` alone, and so on; discovery is still by walking the package (one file per entry).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import xaibench
from tests.conftest import cli_env
from xaibench import registry
from xaibench.errors import UserError
from xaibench.registry import Registry

CELLS = ["model=mlp", "dataset=iris", "method=saliency", "n_samples=5", "sweep_id=lazy", "metrics=sparsity"]

# Run in a fresh process: what a report process imports. Prints one JSON line.
PROBE = textwrap.dedent("""
    import json, sys

    import numpy as np

    import xaibench

    def imported():
        return sorted(m for m in ("quantus", "captum", "xaibench.metrics.quantus_adapter", "xaibench.explainers",
                                  "xaibench.models", "xaibench.engine.stages") if m in sys.modules)

    from xaibench.registry import DATASETS

    out = {"names": DATASETS.names(), "after_names": imported()}
    (cell,) = xaibench.explanations("results/runs/lazy", samples=3)  # the galleries' call: rebuilds the dataset
    out["inputs"] = np.asarray(cell.inputs).tolist()
    out["after_explanations"] = imported()
    from xaibench.cli import main

    sys.argv = ["xaibench", "report", "results/runs/lazy", "--format", "md"]
    try:
        main()
    except SystemExit as done:
        out["report_exit"] = done.code
    out["after_report"] = imported()
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("lazy")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("XAIBENCH_STORE", raising=False)
        xaibench.run(CELLS, multirun=True)
        inputs = xaibench.explanations("results/runs/lazy", samples=3)[0].inputs
    return root, inputs


def test_a_report_rebuilds_its_datasets_without_importing_quantus_or_captum(sweep):
    """A fresh process: listing the datasets imports no explainer, model or metric module; rebuilding a stored
    cell's inputs as the galleries do imports neither Quantus nor captum; the whole ``xaibench report`` (whose
    counterfactual figures ask the methods' registry which methods store counterfactuals) never imports Quantus."""
    root, inputs = sweep
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=root, env=cli_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["names"] == registry.DATASETS.names() and "iris" in out["names"]
    assert out["after_names"] == []
    np.testing.assert_array_equal(np.asarray(out["inputs"], dtype=inputs.dtype), inputs)  # the same samples
    assert out["after_explanations"] == []
    assert out["report_exit"] in (0, None)
    assert (root / "results/runs/lazy/report/report.md").is_file()
    assert "quantus" not in out["after_report"] and "xaibench.metrics.quantus_adapter" not in out["after_report"]
    assert "xaibench.explainers" in out["after_report"]  # the counterfactual check did look the methods up


@pytest.fixture
def plugin_packages(tmp_path, monkeypatch):
    """Two throw-away plugin packages (``lazy_cats``, ``lazy_dogs``: one module per entry, one in a
    subpackage) and a user plugin module ``lazy_user`` registering into both; their modules are unloaded after."""
    cats, dogs = Registry("cat", ("lazy_cats",)), Registry("dog", ("lazy_dogs",))
    monkeypatch.setattr(registry, "CATS", cats, raising=False)
    monkeypatch.setattr(registry, "DOGS", dogs, raising=False)
    files = {
        "lazy_cats/__init__.py": "",
        "lazy_cats/tabby.py": "from xaibench.registry import CATS\n\n@CATS.register('tabby')\nclass Tabby:\n    pass\n",
        "lazy_cats/wild/__init__.py": "",
        "lazy_cats/wild/lynx.py": "from xaibench.registry import CATS\n\n@CATS.register('lynx')\nclass Lynx:\n"
                                  "    pass\n",
        "lazy_dogs/__init__.py": "",
        "lazy_dogs/collie.py": "from xaibench.registry import DOGS\n\n@DOGS.register('collie')\nclass Collie:\n"
                               "    pass\n",
        "lazy_user.py": "from xaibench.registry import CATS, DOGS\n\n@CATS.register('manx')\nclass Manx:\n    pass\n\n"
                        "@DOGS.register('pug')\nclass Pug:\n    pass\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("XAIBENCH_PLUGINS", "lazy_user")
    yield cats, dogs
    for module in [m for m in sys.modules if m.split(".")[0] in ("lazy_cats", "lazy_dogs", "lazy_user")]:
        del sys.modules[module]


def test_a_lookup_imports_only_its_own_package_and_the_users_plugins(plugin_packages):
    cats, dogs = plugin_packages
    assert not {"lazy_cats", "lazy_dogs", "lazy_user"} & set(sys.modules)
    assert cats.names() == ["lynx", "manx", "tabby"]  # walked, subpackages too, and $XAIBENCH_PLUGINS's entry
    assert {"lazy_cats.tabby", "lazy_cats.wild.lynx", "lazy_user"} <= set(sys.modules)
    assert "lazy_dogs" not in sys.modules
    assert dogs._entries.keys() == {"pug"}  # registered by the user's module, the package not imported yet
    assert "collie" in dogs and "lazy_dogs.collie" in sys.modules  # the dogs' first lookup walks their package
    assert list(dogs) == ["collie", "pug"]


def test_an_unknown_name_lists_every_name_of_its_kind_only(plugin_packages):
    cats, dogs = plugin_packages
    with pytest.raises(UserError, match=r"^unknown dog 'colie'; did you mean 'collie'\? valid: collie, pug$"):
        dogs.get("colie")
    assert "lazy_cats" not in sys.modules


def test_an_unimportable_plugin_module_is_one_clear_line(plugin_packages, monkeypatch):
    cats, _ = plugin_packages
    monkeypatch.setenv("XAIBENCH_PLUGINS", "lazy_user, no_such_plugin_module")
    with pytest.raises(UserError, match=r"^XAIBENCH_PLUGINS names 'no_such_plugin_module', which cannot be imported: "
                                        r"No module named 'no_such_plugin_module'$"):
        cats.get("tabby")


def test_load_plugins_fills_every_registry():
    registry.load_plugins()
    assert all(r._loaded for r in (registry.MODELS, registry.DATASETS, registry.EXPLAINERS, registry.METRICS))
    assert {"mlp", "iris", "saliency", "sparseness"} <= {*registry.MODELS, *registry.DATASETS,
                                                         *registry.EXPLAINERS, *registry.METRICS}

"""A config of the user's own that Hydra does not search (docs/ci.md's ``conf/experiment/my_ci.yaml`` run without
``hydra.searchpath``) is refused naming the file and the override that adds it, not only the built-in names."""
from __future__ import annotations

import pytest

from xaibench.config.preflight import validate
from xaibench.errors import UserError

EXPERIMENT = """# @package _global_
sweep_id: my_ci
n_samples: 4
model: {epochs: 1}
"""


def test_an_own_experiment_off_the_search_path_names_the_searchpath_override(tmp_path, monkeypatch):
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "my_ci.yaml").write_text(EXPERIMENT)
    monkeypatch.chdir(tmp_path)
    conf = tmp_path / "conf"
    with pytest.raises(UserError, match=(
            rf"^unknown experiment 'my_ci'; conf/experiment/my_ci.yaml in this folder is not on Hydra's search "
            rf"path: add \"hydra.searchpath=\[file://{conf}\]\"; valid: ci, ")):
        validate(["experiment=my_ci", "model=mlp", "dataset=iris", "method=saliency"], multirun=True)
    # with the override the name is found (no error about it), and a name with no such file keeps the plain message
    validate(["experiment=my_ci", "model=mlp", "dataset=iris", "method=saliency", f"hydra.searchpath=[file://{conf}]"],
             multirun=True)
    with pytest.raises(UserError, match=r"^unknown experiment 'quickstrt'; did you mean 'quickstart'\? valid: "):
        validate(["experiment=quickstrt"], multirun=True)

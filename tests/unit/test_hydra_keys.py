"""Keys added to Hydra's own settings (``xaibench/config/hydra_keys.py``): the refusals are in
``tests/reliability/test_bad_input.py`` (OVERRIDE_CASES); here, the additions Hydra does use pass the pre-flight
and reach the composed config, with Hydra's real compose."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from xaibench.config import preflight
from xaibench.config.preflight.composition import _compose

BASE = ["model=mlp", "dataset=iris", "method=saliency", "n_samples=4"]


@pytest.mark.parametrize("override, key, value", [
    ("+hydra.job.env_set.XAIBENCH_X=1", "hydra.job.env_set.XAIBENCH_X", "1"),  # env_set: Dict[str, str]
    ("++hydra.job.chdir=true", "hydra.job.chdir", True),  # an existing field, force-added
    ("+hydra.job_logging.root.propagate=false", "hydra.job_logging.root.propagate", False),  # logging: a dict
    ("+hydra.callbacks.mine._target_=builtins.dict", "hydra.callbacks.mine._target_", "builtins.dict"),
    ("hydra.job.chdir=true", "hydra.job.chdir", True),
])
def test_hydra_settings_that_hydra_uses_pass_and_are_composed(override, key, value):
    preflight.validate_names([*BASE, override], multirun=False)
    assert len(preflight.expand_sweep([*BASE, override], multirun=True)) == 1
    composed = _compose([*BASE, override], "config", return_hydra_config=True)
    assert OmegaConf.select(composed, key) == value


def test_a_launcher_with_its_own_settings_check_keeps_its_refusal():
    """xaibench's Slurm launcher checks its ``hydra.launcher.*`` itself, naming where other sbatch options go; its
    ``additional_parameters`` (a dict) takes any key."""
    added = "+hydra.launcher.additional_parameters.mail_user=me"
    preflight.validate_names([*BASE, "hydra/launcher=slurm", added], multirun=False)
    composed = _compose([*BASE, "hydra/launcher=slurm", added], "config", return_hydra_config=True)
    assert composed.hydra.launcher.additional_parameters.mail_user == "me"
    preflight.validate_names([*BASE, "hydra/launcher=slurm", "+hydra.launcher.partitio=gpu"], multirun=False)

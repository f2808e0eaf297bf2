"""rev25: ``$XAIBENCH_SLURM_POLL_S`` (perf24) read before the Slurm launcher submits anything."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from tests.unit.test_launcher_checks import fake_slurm_path
from xaibench.errors import UserError


def test_a_malformed_poll_setting_is_refused_before_the_array_is_submitted(tmp_path, monkeypatch):
    """A launch that had no pre-flight (``python -m xaibench.main -m`` with ``hydra/launcher=slurm``: Hydra's
    alone) read ``$XAIBENCH_SLURM_POLL_S`` after submitting the array and recording it in the sweep folder: the
    UserError then left the tasks running with nothing to collect them. It is now refused first, nothing
    submitted and no sweep folder made."""
    from hydra_plugins.xaibench_launchers import chunked_submitit

    submitted = []

    def submit(*args):
        submitted.append(args)
        raise AssertionError("the array was submitted")

    monkeypatch.setenv("PATH", fake_slurm_path())  # submitit looks for srun
    monkeypatch.setenv("FAKE_SLURM_DIR", str(tmp_path / "slurm_state"))
    monkeypatch.setenv("XAIBENCH_SLURM_POLL_S", "soon")
    monkeypatch.setattr(chunked_submitit, "_submit", submit)
    launcher = chunked_submitit.ChunkedSlurmLauncher(cells_per_task=2, submitit_folder=str(tmp_path / "%j"),
                                                     timeout_min=5)
    launcher.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    with pytest.raises(UserError, match=r"^XAIBENCH_SLURM_POLL_S must be a number of seconds from 0.5 "):
        launcher.launch([["model=mlp"], ["model=cnn"]], 0)
    assert submitted == [] and not (tmp_path / "sweep").exists()

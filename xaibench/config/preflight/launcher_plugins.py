"""Which Hydra plugin package each launcher needs, and whether it is installed (the ``launchers`` extra)."""
from __future__ import annotations

_SUBMITIT = ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")
_PLUGIN_OF = {name: _SUBMITIT for name in ("slurm", "slurm_cpu", "submitit_slurm", "submitit_slurm_chunked",
                                           "submitit_local", "submitit_local_chunked")}
_PLUGIN_OF["joblib"] = ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher")
_PLUGIN_PACKAGES = {"xaibench_launchers.chunked_submitit": _SUBMITIT, "hydra_submitit_launcher": _SUBMITIT,
                    "hydra_joblib_launcher": _PLUGIN_OF["joblib"]}  # launcher target -> (module, package)


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False

"""CPU dry run of ``check.sh``: make the packages the GPU box lacks unimportable, as they are there.

The GPU box's image has torch, numpy, pandas, pyarrow, scipy, scikit-learn and more, but not these optional
dependencies of the suite (``/work/.library/device/KINDS.md``'s package list); the check must not need them.
``check.sh`` puts this folder on ``PYTHONPATH`` in CPU mode (``BOX_IMPORTS=0`` turns it off).
"""
import sys

MISSING_ON_THE_BOX = {"wandb", "shap", "lime", "scikit_posthocs", "skops"}


class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in MISSING_ON_THE_BOX:
            raise ModuleNotFoundError(f"No module named {name!r} (not on the GPU box: benchmarks/gpu/box_imports)")
        return None


sys.meta_path.insert(0, _Missing())

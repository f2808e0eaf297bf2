"""Was a results table made from what is in the working tree now? ``--update-baseline`` refuses a stale one.

A baseline is refreshed from a sweep's table. If the weights, the model code or the data files changed after
that sweep ran (a retrain committed, then ``--update-baseline`` on the old ``results/runs/...``), the new
baseline would record scores of a model the repository no longer has, and every later pull request would be
compared with them. The rows say what they were computed from -- ``model_revision`` (the weights file's digest
and that of the file defining the model class: ``ModelSpec.source_revision``), ``dataset_revision`` (the data's
content) and ``git_sha`` (xaibench's own source commit) -- so each is recomputed here and compared:

- a model with a recorded revision (user weights or code: ``torch_module``, ``sklearn_estimator``, Hugging Face
  folders; the zoo's models record none, their code is xaibench's) is rebuilt from its recorded parameters and its
  ``source_revision()`` taken now (rows of ``xaibench.evaluate`` are not: their model was the caller's object);
- a dataset read from a file (its parameters name a ``path``) is built again (for the rows' seed) and its
  content revision taken; generated datasets are xaibench's code;
- xaibench's source commit, where both the rows and this process know it (a git checkout);
- the ``$XAIBENCH_PLUGINS`` module files (user methods and metrics) the sweep recorded in its folder's
  ``sweep.json``: an edited plugin computes its stages again in a sweep, so a table of the old code is stale.

Uncommitted edits to xaibench itself are not visible in the rows (they record the commit only).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from xaibench.errors import UserError

MODEL_KEY = ["model", "model_params", "model_revision"]
API_SWEEP = "evaluate"  # rows of ``xaibench.evaluate``: the model was the caller's object, not files of the tree
DATASET_KEY = ["dataset", "dataset_params", "dataset_revision"]


def stale_reasons(table: pd.DataFrame, folder: Path | None = None) -> list[str]:
    """Why ``table`` was not made from the working tree as it is now (``[]``: it was, as far as rows tell).

    Relative paths in the recorded parameters (``model.state_dict=weights/net.pt``) are read from the current
    folder, as the sweep read them. ``folder``: the table's sweep folder, whose ``sweep.json`` names the plugin
    files the sweep ran with.
    """
    plugins = _plugin_reasons(folder) if folder is not None else []
    return [*_model_reasons(table), *_dataset_reasons(table), *_source_reasons(table), *plugins]


def _plugin_reasons(folder: Path) -> list[str]:
    """The recorded ``$XAIBENCH_PLUGINS`` modules whose file is not the one the sweep ran (edited, or not found)."""
    from xaibench.engine.plugin_code import module_file_digest
    from xaibench.results.manifest import recorded_plugins

    changed = [name for name, digest in recorded_plugins(folder).items() if module_file_digest(name) != digest]
    return [f"plugin module {name} changed since the sweep (or is not importable from here)" for name in changed]


def _model_reasons(table: pd.DataFrame) -> list[str]:
    from xaibench.registry import MODELS
    from xaibench.results.compare.revisions import changed_parts

    if not set(MODEL_KEY) <= set(table.columns):
        return []
    reasons = []
    from_files = table["sweep_id"].astype(str) != API_SWEEP if "sweep_id" in table.columns else True
    recorded = table[(table["model_revision"].astype(str) != "") & from_files].drop_duplicates(MODEL_KEY)
    for name, params, revision in recorded[MODEL_KEY].itertuples(index=False):
        try:
            now = MODELS.create(str(name), _spec_params(MODELS.get(str(name)), params)).source_revision()
        except (UserError, ValueError, TypeError) as error:
            reasons.append(f"model {name} cannot be checked here ({str(error).splitlines()[0]}); run from the folder "
                           "and with the PYTHONPATH / XAIBENCH_PLUGINS the sweep had")
            continue
        if now != revision:
            reasons.append(f"model {name} {changed_parts(str(revision), now, 'weights')} since the sweep"
                           f"{_missing_files(params)}")
    return reasons


def _missing_files(params: str) -> str:
    """``; weights/net.pt is not found from /here`` for recorded local paths that are absent (a run elsewhere)."""
    from pathlib import Path

    try:
        values = json.loads(params or "{}")
    except ValueError:
        return ""
    absent = [str(v) for k, v in values.items() if k in ("state_dict", "path") and isinstance(v, str)
              and not Path(v).exists()]
    return f"; {', '.join(absent)} not found from {Path.cwd()}" if absent else ""


def _dataset_reasons(table: pd.DataFrame) -> list[str]:
    from xaibench.engine.datasets import build_dataset
    from xaibench.registry import DATASETS

    if not set(DATASET_KEY) <= set(table.columns):
        return []
    reasons = []
    rows = table[table["dataset_revision"].astype(str) != ""].drop_duplicates(DATASET_KEY)  # the first seed of each
    for name, params, revision, seed in rows[DATASET_KEY + ["seed"]].itertuples(index=False):
        path = json.loads(params or "{}").get("path")
        if not path:
            continue  # generated data: defined by xaibench's code (checked by its commit)
        try:  # a file's revision is that of its content before the seeded split: any seed of the rows gives it
            spec = DATASETS.create(str(name), _spec_params(DATASETS.get(str(name)), params))
            now = build_dataset(spec, int(seed)).revision
        except Exception as error:  # noqa: BLE001 - a file that cannot be read now cannot be vouched for
            reasons.append(f"dataset {name} cannot be built here ({str(error).splitlines()[0]})")
            continue
        if now != revision:
            reasons.append(f"dataset {name} ({path}) content changed since the sweep ({revision} -> {now})")
    return reasons


def _spec_params(cls: type, params: str) -> dict:
    """The recorded parameters that are fields of the spec ``cls``: rows also record facts the spec derived (a
    table's ``encoded_columns``), which its constructor refuses."""
    import dataclasses

    values = json.loads(params or "{}")
    if not dataclasses.is_dataclass(cls):
        return values
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return {k: v for k, v in values.items() if k in names}


def _source_reasons(table: pd.DataFrame) -> list[str]:
    from xaibench.engine.provenance import git_sha

    if "git_sha" not in table.columns:
        return []
    recorded = sorted({str(s) for s in table["git_sha"].dropna().unique()} - {"", "unknown"})
    now = git_sha()
    if not recorded or now == "unknown" or recorded == [now]:
        return []
    return [f"its rows were computed by xaibench at commit {', '.join(s[:10] for s in recorded)}, this checkout is "
            f"at {now[:10]}"]

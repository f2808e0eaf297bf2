"""Synthetic sweeps for the collect/summary benchmarks: cell files and store artefacts as a sweep writes them.

``make_cells(root, n_cells)`` writes ``n_cells`` cells of 20 metrics x 32 samples (640 rows each) twice, the way
a real sweep does (``xaibench/sweep/``, ``xaibench/engine/runner.py``):

- ``<root>/sweep/cells/<cell_key>.parquet``: the stamped rows (``stamp_rows``), written with ``write_table``, and a
  finished ``sweep.json``;
- ``<root>/store/v2/cells/<key[:2]>/<key>.parquet.artefact``: the shared rows (``shared_rows``) as a format-2
  artefact (``Store.put_frame``, SHA-256 over header and payload) with the cell's stage keys as metadata.

Names and parameters come from ``conf/`` (models, datasets, methods, the first 20 metrics of ``metrics/full.yaml``
with their real parameter JSON), keys are 32 hex digits, values N(0, 1) with 1% NaN rows, and one method is
not applicable on one dataset (20 rows with a message instead of 640), as in real grids. As in a real sweep, every
method of a (model, dataset, seed) explains the same 32 samples with the same targets (drawn once per setting and
seed), so the summary ranks methods on the samples they share (``results/shared.py``); the NaN rows leave some
samples unshared, which that ranking has to handle. (Generator 2 drew samples per cell: methods shared almost no
sample and nothing was ranked as a real sweep's summary ranks.) About half the
datasets have one content revision per seed (split by the seed, as the sklearn sets are), the others one. The grid is
models x datasets x methods x seeds (seeds vary fastest), chosen so that the product is ``n_cells``.

Generation is deterministic and cached: ``cached_cells`` reuses ``<cache>/v<GENERATOR_VERSION>-schema<SCHEMA_VERSION>-<n_cells>/`` when
its ``.complete`` marker exists (10,000 cells take a few minutes to write once).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from xaibench.engine.stamp import shared_rows, stamp_rows
from xaibench.engine.store import Store, encode_artefact, frame_to_parquet_bytes
from xaibench.results import manifest
from xaibench.results.collect import SWEEP_CELLS
from xaibench.results.schema import COLUMNS, SCHEMA_VERSION, conform

ROOT = Path(__file__).resolve().parents[1]
GENERATOR_VERSION = 3  # 3: samples and targets shared by the methods of a (model, dataset, seed)
N_METRICS, N_SAMPLES, N_SEEDS = 20, 32, 5
CACHE = Path(os.environ.get("XAIBENCH_BENCH_CACHE", Path(tempfile.gettempdir()) / "xaibench-bench-collect"))


def grid(n_cells: int) -> tuple[int, int, int, int]:
    """(models, datasets, methods, seeds) with the product ``n_cells`` (5 seeds; 1,000 = 5 x 4 x 10 x 5)."""
    shapes = {1000: (5, 4, 10, N_SEEDS), 10000: (10, 10, 20, N_SEEDS)}
    if n_cells in shapes:
        return shapes[n_cells]
    if n_cells % N_SEEDS:
        raise ValueError(f"--cells {n_cells}: use a multiple of {N_SEEDS}")
    configs = n_cells // N_SEEDS
    methods = max(d for d in range(1, min(20, configs) + 1) if configs % d == 0)
    return 1, configs // methods, methods, N_SEEDS


def cached_cells(n_cells: int, cache: Path = CACHE) -> Path:
    """The folder holding ``sweep/`` and ``store/`` for ``n_cells`` cells (written if absent)."""
    folder = cache / f"v{GENERATOR_VERSION}-schema{SCHEMA_VERSION}-{n_cells}"  # cells of another schema are not read
    if not (folder / ".complete").is_file():
        make_cells(folder, n_cells)
        (folder / ".complete").write_text("ok\n")
    return folder


def _names(group: str, count: int) -> list[tuple[str, dict]]:
    files = sorted((ROOT / "conf" / group).glob("*.yaml"))
    out = []
    for path in files:
        params = yaml.safe_load(path.read_text()) or {}
        if isinstance(params, dict) and "name" in params:
            out.append((path.stem, {k: v for k, v in params.items() if k not in ("name", "_target_")}))
    return [(f"{name}_{i // len(out)}" if i >= len(out) else name, params)
            for i, (name, params) in enumerate(out[i % len(out)] for i in range(count))]


def _metrics() -> list[tuple[str, str, bool, str]]:
    """The first N_METRICS metrics of conf/metrics/full.yaml: (name, family, higher_is_better, params JSON)."""
    text = (ROOT / "conf" / "metrics" / "full.yaml").read_text()
    params = yaml.safe_load(text)
    family, families = "", {}
    for line in text.splitlines():
        if line.startswith("# ---"):
            family = line.removeprefix("# ---").strip()
        elif line and not line.startswith((" ", "#")) and ":" in line:
            families[line.split(":")[0]] = family
    names = list(params)[:N_METRICS]
    lower = ("infidelity", "sensitivity", "lipschitz", "stability", "complexity", "proximity")
    return [(n, families[n], not any(w in n for w in lower), json.dumps(params[n] or {}, sort_keys=True))
            for n in names]


def _template() -> pd.DataFrame:
    """One cell's 640 rows with every per-cell column left to fill."""
    n = N_METRICS * N_SAMPLES
    metrics = _metrics()
    frame = pd.DataFrame({c: pd.Series([None] * n, dtype="object") for c in COLUMNS})
    frame["schema_version"] = SCHEMA_VERSION
    frame["metric"] = np.repeat([m[0] for m in metrics], N_SAMPLES)
    frame["family"] = np.repeat([m[1] for m in metrics], N_SAMPLES)
    frame["higher_is_better"] = np.repeat([m[2] for m in metrics], N_SAMPLES)
    frame["params"] = np.repeat([m[3] for m in metrics], N_SAMPLES)
    frame["status"], frame["message"], frame["device"], frame["model_revision"] = "ok", "", "cpu", ""
    frame["explain_device"], frame["model_device"], frame["oom_backoffs"] = "cpu", "cpu", 0
    frame["model_flag"], frame["target_mode"], frame["explain_output"] = "", "predicted", "log_softmax"
    frame["xaibench_version"], frame["torch_version"] = "0.1.0", "2.13.0+cpu"
    frame["captum_version"], frame["quantus_version"] = "0.9.0", "0.6.0"
    frame["git_sha"] = "cbe39aee3a36aa74d76207514db174a391ad5abd"
    frame["sweep_id"], frame["model_label"], frame["dataset_label"] = "", "", ""
    frame["n_samples"] = N_SAMPLES
    return frame


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def make_cells(folder: Path, n_cells: int) -> None:
    """Write ``n_cells`` cells into ``folder/sweep`` (cell files) and ``folder/store`` (format-2 artefacts)."""
    n_models, n_datasets, n_methods, n_seeds = grid(n_cells)
    models, datasets = _names("model", n_models), _names("dataset", n_datasets)
    methods = _names("method", n_methods)
    sweep, store = folder / "sweep", Store(folder / "store")
    (sweep / SWEEP_CELLS).mkdir(parents=True, exist_ok=True)
    manifest.begin(sweep, n_cells)
    template, rng = _template(), np.random.default_rng(0)
    for model, model_params in models:
        for index, (dataset, dataset_params) in enumerate(datasets):
            explained = [_explained(rng, dataset) for _ in range(n_seeds)]  # every method explains these
            for method, method_params in methods:
                for seed in range(n_seeds):
                    not_applicable = (dataset, method) == (datasets[-1][0], methods[-1][0])
                    frame = _cell(template, rng, model, model_params, dataset, dataset_params, method,
                                  method_params, seed, explained[seed], split_by_seed=index % 2 == 0,
                                  not_applicable=not_applicable)
                    key = frame["cell_key"].iat[0]
                    artefact, cell_file = store.path("cells", key, "parquet"), sweep / SWEEP_CELLS / f"{key}.parquet"
                    if artefact.is_file() and cell_file.is_file():
                        continue  # written by an interrupted earlier run (files appear complete or not at all)
                    scores = sorted({_key("scores", key, m) for m in frame["metric"]})
                    stages = {"models": [_key("model", model, dataset, seed)],
                              "explanations": [frame["explanation_key"].iat[0]], "scores": scores}
                    payload = frame_to_parquet_bytes(shared_rows(frame))  # as Store.put_frame
                    _write(artefact, encode_artefact("cells", key, "parquet", payload, {"stages": stages}))
                    stamped = stamp_rows(frame, sweep_id="bench", device="cpu", model_label=model,
                                         dataset_label=dataset, ran=True)
                    _write(cell_file, frame_to_parquet_bytes(stamped))  # as write_table
    manifest.complete(sweep, n_cells)


def _write(path: Path, data: bytes) -> None:
    """The bytes a sweep writes, renamed into place like ``atomic_write_bytes`` but without its fsync (which
    made generating 10,000 cells take an hour on a busy disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _explained(rng: np.random.Generator, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """The sample ids and predicted targets one (model, dataset, seed) explains: ``(N_SAMPLES,)`` each."""
    ids = np.array([f"{dataset}-{i:05d}" for i in rng.choice(1000, N_SAMPLES, replace=False)], dtype=object)
    return ids, rng.integers(0, 10, N_SAMPLES)


def _cell(template: pd.DataFrame, rng: np.random.Generator, model: str, model_params: dict, dataset: str,
          dataset_params: dict, method: str, method_params: dict, seed: int,
          explained: tuple[np.ndarray, np.ndarray], *, split_by_seed: bool, not_applicable: bool) -> pd.DataFrame:
    frame = template.copy()
    n = len(frame)
    key = _key("cell", model, dataset, method, seed)
    frame["model"], frame["dataset"], frame["method"], frame["seed"] = model, dataset, method, seed
    frame["cell_key"] = key
    frame["model_params"] = json.dumps(model_params, sort_keys=True)
    frame["dataset_params"] = json.dumps(dataset_params, sort_keys=True)
    frame["method_params"] = json.dumps(method_params, sort_keys=True)
    # A dataset split by the seed (sklearn sets, user files) has one content revision per seed, which makes
    # every seed its own configuration in the summary; synthetic sets (fixed data_seed) keep one.
    frame["dataset_revision"] = _key("data", dataset, seed if split_by_seed else -1)[:16]
    frame["model_accuracy"] = round(0.7 + 0.3 * rng.random(), 6)
    frame["explanation_key"] = _key("explanations", model, dataset, method, seed)
    if not_applicable:  # one row per metric, no sample, a message (the runner's rows.for_all)
        frame = frame.drop_duplicates("metric").reset_index(drop=True)
        frame["sample_id"], frame["target"], frame["value"] = "", -1, np.nan
        frame["status"] = "not_applicable"
        frame["message"] = f"method {method} does not apply to dataset {dataset}"
        frame[["explain_s", "score_s", "n_forward"]] = np.nan
        frame["created_at"], frame["explanation_key"], frame["device"], frame["explain_device"] = "", "", "", ""
        frame["model_device"] = ""  # nothing ran: no model stage (the runner's rows.for_all before any stage)
        return conform(frame)
    samples, targets = explained
    frame["sample_id"], frame["target"] = np.tile(samples, N_METRICS), np.tile(targets, N_METRICS)
    values = rng.normal(size=n)
    nan = rng.random(n) < 0.01
    values[nan] = np.nan
    frame["value"], frame["status"] = values, np.where(nan, "nan", "ok")
    frame["explain_s"] = np.repeat(rng.exponential(0.05), n)
    frame["score_s"] = rng.exponential(0.01, n)
    frame["n_forward"] = np.repeat(rng.integers(1, 200, N_METRICS).astype(float), N_SAMPLES)
    frame["created_at"] = f"2026-11-30T20:{seed:02d}:{rng.integers(60):02d}+00:00"
    return conform(frame)


def first_cells(n_cells: int, of: int, cache: Path = CACHE) -> Path:
    """A sweep of the first ``n_cells`` cells, in table order, of the ``of``-cell grid (symlinks to its cell
    files; no store): the same rows as the large grid's first chunks, so that a peak measured on it and on the
    whole grid differ by the number of cells only, not by what a row holds (the grids of ``grid`` differ in their
    models, datasets and methods, hence in their parameter texts)."""
    from xaibench.results.collect import _ordered_map, _sweep_head, sweep_cell_files

    folder = cache / f"v{GENERATOR_VERSION}-schema{SCHEMA_VERSION}-first{n_cells}of{of}"
    if not (folder / ".complete").is_file():
        source = cached_cells(of) / "sweep"
        heads = sorted(_ordered_map(_sweep_head, sweep_cell_files(source)), key=lambda head: (head[0], head[1]))
        sweep = folder / "sweep"
        sweep.mkdir(parents=True, exist_ok=True)
        manifest.begin(sweep, n_cells)
        (sweep / SWEEP_CELLS).mkdir(exist_ok=True)
        for _, path, _ in heads[:n_cells]:
            link = sweep / SWEEP_CELLS / path.name
            if not link.is_symlink():
                link.symlink_to(path)
        manifest.complete(sweep, n_cells)
        (folder / ".complete").write_text("ok\n")
    return folder

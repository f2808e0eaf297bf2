"""The store a sweep folder's jobs ran with: where ``xaibench report`` and ``xaibench.explanations`` find a
sweep's stored explanations, wherever they run."""
from __future__ import annotations

from pathlib import Path

# ``xaibench.load(sweep folder)``'s table records its sweep's store here (read by ``xaibench.explanations``)
STORE_ATTR = "xaibench_store"


def sweep_store(folder: Path) -> str | None:
    """The ``store_dir`` a sweep folder's jobs ran with; None when ``folder`` is a table file, has no job config, or
    the store cannot be told. A relative store (the default ``results/store``) is taken from where the sweep ran
    (``folder`` less its ``results_dir/sweep_id``), not from where the report runs: a report written from another
    folder found no stored explanations and drew no galleries."""
    import yaml

    configs = sorted(folder.glob("jobs/*/.hydra/config.yaml")) if folder.is_dir() else []
    if not configs:
        return None
    try:
        config = yaml.safe_load(configs[0].read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    store = _resolved_store(config.get("store_dir"))
    if store is None or Path(store).is_absolute():
        return store
    ran_in = _sweep_root(folder, config)
    return str(ran_in / store) if ran_in is not None else None


def _resolved_store(store) -> str | None:
    """``store_dir`` as the sweep resolved it: the default ``${oc.env:XAIBENCH_STORE,results/store}`` reads the
    environment now, as before; any other interpolation cannot be told (None)."""
    import os

    if not store:
        return None
    text = str(store)
    if text == "${oc.env:XAIBENCH_STORE,results/store}":
        return os.environ.get("XAIBENCH_STORE") or "results/store"
    return None if "${" in text else text


def _sweep_root(folder: Path, config: dict) -> Path | None:
    """The folder the sweep ran in: ``folder`` less its trailing ``results_dir/sweep_id`` (None if it does not end
    so)."""
    tail = (*Path(str(config.get("results_dir", ""))).parts, str(config.get("sweep_id", "")))
    parts = folder.resolve().parts
    if Path(str(config.get("results_dir", ""))).is_absolute() or "${" in "".join(tail) or parts[-len(tail):] != tail:
        return None
    return Path(*parts[:-len(tail)])

"""The cell: one (model, dataset, method, seed) with its metric suite and sample count (design.md: The cell).

Keys are content hashes of the config sections that change the result. Paths, logging, launcher, device and
batch sizes are not in any key. Each stage has its own key so adding a metric scores only that metric and
adding a method explains only with that method.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from xaibench import __version__
from xaibench.engine.keys import digest
from xaibench.errors import UserError
from xaibench.explainers.output_kinds import DEFAULT_EXPLAIN_OUTPUT, EXPLAIN_OUTPUTS
from xaibench.results.schema import SCHEMA_VERSION

TARGETS = ("predicted", "label")
LABELLED_AXES = ("model", "dataset")  # sections whose ``label`` is a display name, never part of a key
# Scoring engines: "fast" (xaibench.metrics.fast: chunked Quantus subclasses, scores equal Quantus' to 1e-6 but not
# bit for bit, so it is in the cell and score keys) and "quantus" (the stock classes; keys as before the engine).
ENGINES = ("fast", "quantus")
DEFAULT_CHUNK_SIZE = 1024  # rows per fast-engine forward, capped by CHUNK_ELEMENTS (large inputs get fewer rows)
# chunk_size: auto (None in the spec): forwards of DEFAULT_CHUNK_SIZE rows, re-explanation calls sized by the model's
# activations (xaibench/metrics/fast/_sizing.py)
AUTO_CHUNK = "auto"
CHUNK_ELEMENTS = 2**21  # input elements per fast-engine forward (8 MB of float32): 32 rows of 224x224 RGB images


def split_name(section: Mapping[str, Any], axis: str) -> tuple[str, dict[str, Any]]:
    """``{"name": "mlp", "hidden": [8]}`` -> ``("mlp", {"hidden": [8]})``."""
    if not isinstance(section, Mapping) or "name" not in section:
        raise UserError(f"config section {axis!r} must be a mapping with a 'name' (choose with {axis}=<name>)")
    params = {k: v for k, v in section.items() if k not in ("name", "label")}
    return str(section["name"]), params


def pop_label(section: Mapping[str, Any], axis: str) -> tuple[dict[str, Any], str | None]:
    """``{"name": "csv_table", "label": "Adult", ...}`` -> (the section without ``label``, ``"Adult"``).

    A label only changes how rows and tables name the model/dataset, so it is removed before any key is made.
    """
    if not isinstance(section, Mapping):
        return section, None  # split_name reports the malformed section
    section = dict(section)
    label = section.pop("label", None)
    if label is not None and not isinstance(label, str):
        raise UserError(f"{axis}.label must be a string (a display name), got {label!r}")
    return section, (label or None)


@dataclass(frozen=True)
class CellSpec:
    """What a cell computes. Everything here except ``device``, ``strict`` and ``batch_size`` is in its key."""

    model: dict[str, Any]
    dataset: dict[str, Any]
    method: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    seed: int = 0
    n_samples: int = 32
    target: str = "predicted"
    explain_output: str = DEFAULT_EXPLAIN_OUTPUT
    device: str = "cpu"
    batch_size: int = 64
    strict: bool = False
    labels: dict[str, str] = field(default_factory=dict)  # display names {"model"|"dataset": label}; not in keys
    engine: str = "fast"
    chunk_size: int | None = None  # None: ``auto`` (see AUTO_CHUNK); not in the key

    @classmethod
    def from_config(cls, cfg: DictConfig | Mapping[str, Any]) -> "CellSpec":
        data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        metrics = data.get("metrics") or {}
        if not isinstance(metrics, Mapping):
            raise UserError("metrics must be a mapping {metric_name: {params}}; choose a suite with metrics=<suite>")
        sections, labels = {}, {}
        for axis in LABELLED_AXES:
            sections[axis], label = pop_label(data[axis], axis)
            if label:
                labels[axis] = label
        spec = cls(
            model=sections["model"],
            dataset=sections["dataset"],
            method=dict(data["method"]),
            metrics={str(k): dict(v or {}) for k, v in metrics.items()},
            seed=_int(data.get("seed", 0), "seed"),
            n_samples=_int(data.get("n_samples", 32), "n_samples"),
            target=str(data.get("target", "predicted")),
            explain_output=str(data.get("explain_output", DEFAULT_EXPLAIN_OUTPUT)),
            device=str(data.get("device", "cpu")),
            batch_size=_int(data.get("batch_size", 64), "batch_size"),
            strict=bool(data.get("strict", False)),
            labels=labels,
            engine=str(data.get("engine", "fast")),
            chunk_size=chunk_size_of(data.get("chunk_size", AUTO_CHUNK)),
        )
        if spec.engine not in ENGINES:
            raise UserError(f"engine must be one of {', '.join(ENGINES)}, got {spec.engine!r}")
        if spec.target not in TARGETS:
            raise UserError(f"target must be one of {', '.join(TARGETS)}, got {spec.target!r}")
        if spec.explain_output not in EXPLAIN_OUTPUTS:
            raise UserError(f"explain_output must be one of {', '.join(EXPLAIN_OUTPUTS)}, got {spec.explain_output!r}")
        for name in ("n_samples", "batch_size"):
            if getattr(spec, name) < 1:
                raise UserError(f"{name} must be a positive integer, got {getattr(spec, name)}")
        if not 0 <= spec.seed < 2 ** 32:  # numpy's and scikit-learn's seeds; they refused it naming random_state
            raise UserError(f"seed must be an integer in [0, 4294967295], got {spec.seed}")
        return spec

    # Names -------------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return split_name(self.model, "model")[0]

    @property
    def dataset_name(self) -> str:
        return split_name(self.dataset, "dataset")[0]

    @property
    def model_label(self) -> str:
        """Display name of the model: ``model.label`` or the registry name."""
        return self.labels.get("model") or self.model_name

    @property
    def dataset_label(self) -> str:
        """Display name of the dataset: ``dataset.label`` or the registry name."""
        return self.labels.get("dataset") or self.dataset_name

    @property
    def method_name(self) -> str:
        return split_name(self.method, "method")[0]

    def reads_user_files(self) -> bool:
        """Whether the model or dataset loads files (user data, weights): their bytes are not in the key.

        Such cells are re-validated (data revision, weights hash) on every run; others are fully described by
        their key, so a stored cell can be returned without building anything.
        """
        return _names_files(self.model) or _names_files(self.dataset)

    # Keys --------------------------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """The cell key: model, dataset, method, metrics, seed, n_samples, target, explained output, schema and
        package versions, and the fixes of the method under that output (``engine/revisions.py``).

        Within one package version, code edits do not invalidate stored results (use a fresh ``store_dir`` when
        developing a method); rows always record the git SHA that computed each score stage.
        """
        from xaibench.engine.plugin_code import plugin_modules_digest

        plugins = plugin_modules_digest()
        return digest("cell", SCHEMA_VERSION, __version__, self.model, self.dataset, self.method, self.metrics, self.seed,
                      self.n_samples, self.target, self.explain_output, *self._engine_tag(),
                      *([plugins] if plugins else []), *self._revisions())

    def model_key(self, dataset_revision: str, source_revision: str = "", *, versioned: bool = True) -> str:
        """Trained-model key; ``source_revision`` hashes user weights loaded from a path (empty for the zoo).

        ``versioned=False`` leaves the package version out: the stages' random seeds derive from that identity, so
        a new release invalidates the store (it may compute differently) without redrawing anything by itself.
        """
        extra = [source_revision] if source_revision else []
        version = [__version__] if versioned else []
        # Where the files lie is not what they hold: the data revision (and ``source_revision`` for weights) stand
        # for the files' contents, so the same CSV at another path (a cluster's scratch disk, a moved folder) trains
        # the same model with the same seeds, and explains and scores with the same draws.
        model = _without_paths(self.model) if source_revision else self.model
        return digest("model", *version, model, _without_paths(self.dataset), self.seed, dataset_revision, *extra)

    def explanation_key(self, model_key: str, *, versioned: bool = True, modality: Any = None) -> str:
        """Explanation-stage key of the model ``model_key`` (``versioned=False``: the seed identity, as above).

        The method's parameters are hashed with their defaults filled in (``engine/canonical.py``): a method
        written with or without its default parameters explains once, with the same draws; so is one written
        with parameters that do not apply to the dataset's ``modality`` (occlusion's ``window`` on a table).
        """
        from xaibench.engine.canonical import resolved_method

        version = [__version__] if versioned else []
        code = self._plugin_code("method") if versioned else []  # the seeds stay those of the method's identity
        revisions = self._revisions() if versioned else []  # a fix moves maps, not the random draws
        return digest("explanations", *version, model_key, resolved_method(self.method, modality), self.n_samples,
                      self.target, self.explain_output, *code, *revisions)

    def score_key(self, explanation_key: str, metric: str) -> str:
        """Score-stage key; the metric's parameters hashed over its registered defaults (``engine/canonical.py``):
        ``+metrics.sparseness={}`` and a suite's spelled-out defaults share one stage."""
        from xaibench.engine.canonical import resolved_metric

        return digest("scores", __version__, explanation_key, metric, resolved_metric(metric, self.metrics[metric]),
                      *self._engine_tag(), *self._plugin_code("metric", metric))

    def _plugin_code(self, kind: str, metric: str = "") -> list[str]:
        """``[sha256 of the plugin's defining file]`` when the method (or ``metric``) is user code, else ``[]``
        (``engine/plugin_code.py``): an edited plugin computes again instead of being read from the store."""
        from xaibench.engine.plugin_code import code_digest_of
        from xaibench.registry import EXPLAINERS, METRICS

        if kind == "method":
            name = self.method_name
            code = code_digest_of(EXPLAINERS.get(name)) if name in EXPLAINERS else ""
        else:
            spec = METRICS.get(metric) if metric in METRICS else None
            code = code_digest_of(spec.quantus_class, spec.native) if spec is not None else ""
        return [code] if code else []

    def _revisions(self) -> list[str]:
        """Fixes of this cell's method under its ``explain_output`` on its model (``engine/revisions.py``); ``[]``
        for most cells, whose keys are then what they always were."""
        from xaibench.engine.revisions import revision_tags

        return revision_tags(self.method_name, self.explain_output, self.model_name)

    def _engine_tag(self) -> list[str]:
        """The engine joins the keys unless it is the reference (plain Quantus keeps the keys it always had)."""
        return [] if self.engine == "quantus" else [f"engine={self.engine}"]


# Parameters that name the user's files or code (``target``: a torch_module's class, whose file may be edited).
FILE_PARAMS = frozenset({"path", "state_dict", "file", "dir", "root", "estimator", "target"})


# The parameters among those that hold a path (``estimator`` and ``target`` name classes).
PATH_PARAMS = FILE_PARAMS - {"estimator", "target"}


def _without_paths(section: Any) -> Any:
    """``section`` without its path parameters (``PATH_PARAMS``, at any depth); anything else as it is."""
    if isinstance(section, Mapping):
        return {k: _without_paths(v) for k, v in section.items() if k not in PATH_PARAMS}
    return section


def _names_files(section: Any) -> bool:
    """A non-null file-like parameter, or any string naming an existing path, anywhere in ``section``."""
    import os

    if isinstance(section, Mapping):
        return any((k in FILE_PARAMS and v not in (None, "")) or _names_files(v) for k, v in section.items())
    if isinstance(section, (list, tuple)):
        return any(_names_files(v) for v in section)
    return isinstance(section, str) and bool(section) and ("/" in section or os.sep in section) and os.path.exists(section)


def chunk_size_of(value: Any) -> int | None:
    """The config's ``chunk_size``: ``auto`` (or null) -> None, else a positive integer (rows)."""
    if value is None or value == AUTO_CHUNK:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"chunk_size must be a positive integer (rows) or {AUTO_CHUNK!r}, got {value!r}")
    return value


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name} must be an integer, got {value!r}")
    return value

"""Tolerance policies for ``xaibench compare``: when does a changed score count as a change at all?

A policy is a YAML file (``conf/compare/<name>.yaml`` or any path) with a default tolerance and optional
overrides per metric family and per metric. Precedence is field by field: each field comes from the metric's entry
if it sets it, else from its family's entry, else from the default (``families: {stability: {rtol: 0.3}}`` and
``metrics: {max_sensitivity: {mode: mean}}`` give max_sensitivity ``mode=mean, rtol=0.3`` and the default's
``atol``)::

    mode: wilcoxon        # elementwise | mean | wilcoxon | bootstrap
    atol: 0.002           # absolute tolerance, in the metric's own units: the floor for scores near 0
    rtol: 0.02            # relative tolerance, times the mean |baseline value| (elementwise: each |value|)
    alpha: 0.05           # significance level of the wilcoxon / bootstrap modes
    n_boot: 2000          # bootstrap resamples
    families: {localisation: {atol: 0.05}}
    metrics: {max_sensitivity: {rtol: 0.05}}
    controls: [random, constant, sobel]   # reference methods (sanity baselines), not methods under test
    gate_controls: false  # a control's own score change is reported, not failed (true: it fails like any method)

Controls are reference points: a real method must still beat them (a method that falls to or below a control it
used to beat is a ``below_control`` finding, which fails when the gap's change is significant), but a control's
own drift -- a random baseline's faithfulness moves whenever the model is retrained -- says nothing about the
methods under test, so by default it is reported (``control``) and does not fail. ``strict`` gates it.

A method is a control when its rows say so (``"role": "control"`` in ``method_params``: the method's class sets
``Explainer.control``, as ``random``, ``constant`` and ``sobel`` do, and a user's own control or a subclass of one
registered under another name) or when it matches an entry of ``controls``: a method name (every parameter
variant of it; the default list covers tables written before rows recorded the role) or
``{method: NAME, params: {...}}`` (only the variant whose ``method_params`` hold those values).

The modes (``xaibench.results.compare.values`` applies them to the paired per-sample values of one method on one
metric in one experiment):

- ``elementwise``: every sample must stay within ``atol + rtol * |baseline|`` ("nothing may change").
- ``mean``: the mean paired difference must stay within ``atol + rtol * mean|baseline|``.
- ``wilcoxon``: a change must exceed that tolerance *and* be significant in a one-sided paired Wilcoxon
  signed-rank test (Wilcoxon 1945) over the unit's samples, in the direction of the change; samples within
  ``atol + rtol * |baseline|`` count as unchanged. A consistent shift, or a method broken on 5 or more samples
  (all one way), fails; 1-4 samples moving (what flips across machines) are reported as ``unconfirmed`` and pass.
- ``bootstrap``: as ``wilcoxon``, with significance from the percentile bootstrap CI (level ``1 - 2 alpha``) of
  the mean per-sample difference: it must exclude 0.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from xaibench.config.paths import conf_dir
from xaibench.errors import UserError
from xaibench.results.roles import BUILTIN_CONTROLS  # the suite's controls, by name: a table without roles

MODES = ("elementwise", "mean", "wilcoxon", "bootstrap")
POLICY_GROUP = "compare"  # conf/compare/<name>.yaml


@dataclass(frozen=True)
class Tolerance:
    """How much one method's scores on one metric may move before it counts as a change."""

    mode: str = "wilcoxon"
    atol: float = 0.002  # a floor for scores near 0; rtol carries the tolerance of scores on any other scale
    rtol: float = 0.02
    alpha: float = 0.05
    n_boot: int = 2000

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"compare policy: unknown mode {self.mode!r}; valid: {', '.join(MODES)}")
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise UserError(f"compare policy: {name} must be a number >= 0, got {value!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0 < self.alpha < 0.5:
            raise UserError(f"compare policy: alpha must be in (0, 0.5) (the level of a one-sided test), "
                            f"got {self.alpha!r}")
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int) or self.n_boot < 100:
            raise UserError(f"compare policy: n_boot must be an integer >= 100, got {self.n_boot!r}")

    def describe(self) -> str:
        text = f"{self.mode}, atol={self.atol:g}, rtol={self.rtol:g}"
        return text + (f", alpha={self.alpha:g}" if self.mode in ("wilcoxon", "bootstrap") else "")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Control:
    """A ``controls`` entry: a method name, optionally only the variant whose ``method_params`` hold ``params``."""

    method: str
    params: tuple[tuple[str, Any], ...] = ()  # (key, value) pairs the recorded method_params must hold

    def matches(self, method: str, method_params: str = "{}") -> bool:
        if str(method) != self.method:
            return False
        if not self.params:
            return True
        try:
            recorded = json.loads(method_params or "{}")
        except (TypeError, ValueError):
            return False
        return all(key in recorded and recorded[key] == value for key, value in self.params)

    def __str__(self) -> str:
        if not self.params:
            return self.method
        return f"{self.method} [{' '.join(f'{k}={json.dumps(v)}' for k, v in self.params)}]"

    def as_setting(self) -> str | dict[str, Any]:
        """The entry as a policy file writes it (a name, or ``{method, params}``)."""
        return self.method if not self.params else {"method": self.method, "params": dict(self.params)}


DEFAULT_CONTROLS = tuple(Control(name) for name in BUILTIN_CONTROLS)


@dataclass(frozen=True)
class Policy:
    """A default tolerance plus per-family and per-metric overrides."""

    name: str
    default: Tolerance = Tolerance()
    families: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # family -> the fields its entry sets
    metrics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # metric -> the fields its entry sets
    controls: tuple[Control, ...] = DEFAULT_CONTROLS  # methods (or variants) that are reference points
    gate_controls: bool = False  # whether a control's own score change fails (else it is reported only)

    @property
    def default_controls(self) -> bool:
        """Whether ``controls`` is the default list (the built-in names), not a list of the policy's own."""
        return tuple(self.controls) == DEFAULT_CONTROLS

    def is_control(self, method: str, method_params: str = "{}") -> bool:
        """Whether a ``controls`` entry names ``method`` (with ``method_params``, a JSON object); the rows' own
        ``role`` is the comparison's to add (``comparison.compare_tables``)."""
        return any(entry.matches(method, method_params) for entry in self.controls)

    def tolerance(self, metric: str, family: str) -> Tolerance:
        """The tolerance that applies to ``metric`` (of ``family``), field by field: the metric entry's value of a
        field, else the family entry's, else the default's."""
        return replace(self.default, **{**self.families.get(family, {}), **self.metrics.get(metric, {})})

    def as_dict(self) -> dict[str, Any]:
        """The policy as its file writes it (``families``/``metrics``: the fields each entry sets)."""
        return {"name": self.name, **self.default.as_dict(),
                "families": {k: dict(v) for k, v in self.families.items()},
                "metrics": {k: dict(v) for k, v in self.metrics.items()},
                "controls": [entry.as_setting() for entry in self.controls], "gate_controls": self.gate_controls}


def load_policy(name_or_path: str) -> Policy:
    """A policy by name (``conf/compare/<name>.yaml``) or from a YAML file path; raises ``UserError``."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = conf_dir() / POLICY_GROUP / f"{name_or_path}.yaml"
        if not path.is_file():
            raise UserError(f"unknown compare policy {name_or_path!r}; valid: {', '.join(policy_names())} "
                            "(or a path to a .yaml file)")
    elif not path.is_file():
        raise UserError(f"compare policy file {name_or_path} not found")
    return parse_policy(_read_yaml(path), name=path.stem if path.parent == conf_dir() / POLICY_GROUP else str(path))


def policy_names() -> list[str]:
    return sorted(p.stem for p in (conf_dir() / POLICY_GROUP).glob("*.yaml"))


def parse_policy(data: Mapping[str, Any] | None, *, name: str) -> Policy:
    """Build a ``Policy`` from its mapping form (see the module docstring); unknown keys are errors."""
    data = dict(data or {})
    families = _overrides(data.pop("families", None) or {}, "families")
    metrics = _overrides(data.pop("metrics", None) or {}, "metrics")
    controls, gate = _controls(data.pop("controls", list(BUILTIN_CONTROLS)), data.pop("gate_controls", False))
    default = _tolerance(Tolerance(), data, where="")
    return Policy(name=name, default=default,
                  families={k: _settings(default, v, where=f"families.{k}.") for k, v in families.items()},
                  metrics={k: _settings(default, v, where=f"metrics.{k}.") for k, v in metrics.items()},
                  controls=controls, gate_controls=gate)


def _controls(entries: Any, gate: Any) -> tuple[tuple[Control, ...], bool]:
    """The ``controls`` (a list of method names or ``{method, params}`` entries, may be empty) and
    ``gate_controls`` (a boolean) settings."""
    if entries is None:
        entries = []
    if not isinstance(entries, (list, tuple)):
        raise UserError(f"compare policy: controls must be a list of method names, got {entries!r}")
    if not isinstance(gate, bool):
        raise UserError(f"compare policy: gate_controls must be true or false, got {gate!r}")
    return tuple(_control(entry) for entry in entries), gate


def _control(entry: Any) -> Control:
    """One ``controls`` entry: ``random`` or ``{method: random, params: {positive: true}}``."""
    if isinstance(entry, str) and entry:
        return Control(entry)
    if isinstance(entry, Mapping) and set(entry) <= {"method", "params"} and isinstance(entry.get("method"), str) \
            and entry["method"] and isinstance(entry.get("params", {}), Mapping):
        return Control(entry["method"], tuple(sorted((str(k), v) for k, v in (entry.get("params") or {}).items())))
    raise UserError(f"compare policy: a controls entry must be a method name or {{method: NAME, params: {{...}}}}, "
                    f"got {entry!r}")


def _overrides(value: Any, where: str) -> dict[str, Mapping[str, Any]]:
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise UserError(f"compare policy: {where} must map names to tolerance settings, got {value!r}")
    return {str(k): v for k, v in value.items()}


# a float as YAML 1.2 (and OmegaConf, which reads xaibench's own configs) writes it; PyYAML, YAML 1.1, reads
# ``1e-3`` (no dot) as a string
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
FLOAT_FIELDS = ("atol", "rtol", "alpha")


def _as_numbers(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with ``atol: 1e-3`` (a string to PyYAML) read as the number it is, as in every other config:
    the policy refused it, "atol must be a number >= 0, got '1e-3'" (ciuser25)."""
    return {k: float(v) if k in FLOAT_FIELDS and isinstance(v, str) and _FLOAT.fullmatch(v.strip()) else v
            for k, v in settings.items()}


def _tolerance(base: Tolerance, settings: Mapping[str, Any], *, where: str) -> Tolerance:
    settings = _as_numbers(settings)
    valid = [f.name for f in fields(Tolerance)]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise UserError(f"compare policy: unknown setting {where}{unknown[0]}; valid: {', '.join(valid)}")
    return replace(base, **settings)


def _settings(base: Tolerance, settings: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """An override's settings (the fields it sets), each checked as ``Tolerance`` checks it."""
    settings = _as_numbers(settings)
    _tolerance(base, settings, where=where)
    return settings


def _read_yaml(path: Path) -> Mapping[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"compare policy {path} cannot be read: {_yaml_problem(error)}") from None
    if data is not None and not isinstance(data, Mapping):
        raise UserError(f"compare policy {path} must be a mapping of settings, got {type(data).__name__}")
    return data or {}


def _yaml_problem(error: Exception) -> str:
    """What is wrong and where: PyYAML's first line (``while scanning for the next token``) names neither."""
    mark, problem = getattr(error, "problem_mark", None), getattr(error, "problem", None)
    if mark is None or not problem:
        return str(error).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"

"""What ``compare_tables`` returns: ``Finding`` (one difference between the tables), ``ComparedUnit`` (one unit it
visited) and ``Comparison`` (all findings, counts, pass/fail)."""
from __future__ import annotations

from dataclasses import dataclass, field

from xaibench.results.compare.policy import Policy, Tolerance
from xaibench.results.compare.resolution import CoarseTolerance
from xaibench.results.compare.values import ValueChange

KINDS = ("missing", "status", "direction", "degraded", "below_control", "improved", "unconfirmed", "control", "new",
         "rank", "revision")


@dataclass(frozen=True)
class Finding:
    """One difference between the tables.

    Attributes:
        kind: one of ``KINDS``.
        fails: whether it makes the comparison fail.
        unit: the unit's columns (``model``, ``dataset``, ``method``, ``metric``, params ...) plus ``family``,
            ``higher_is_better``, a short ``variant`` naming the parameters that tell same-named units apart
            (``method.abs=False``, as the summary's ``variant`` column) and ``labels``: the unit's model, dataset,
            method and metric as the report names them (``saliency (abs=False)``; a model or dataset by its
            display name where the sweep set one, ``model.label``: ``names.UnitNames``) and ``identity``: the names
            of its JUnit testcase (``names.UnitNames.identity``). A ``revision`` finding's ``unit`` holds the model
            or dataset that changed, its parameters and its ``labels``.
        message: one sentence for people.
        change: the value comparison (``degraded``/``improved``), else None.
        tolerance: the tolerance that applied to ``change``.
        details: machine-readable extras (counts, sample ids, ranks).
    """

    kind: str
    fails: bool
    unit: dict
    message: str
    change: ValueChange | None = None
    tolerance: Tolerance | None = None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ComparedUnit:
    """One unit ``compare_tables`` visited (a testcase of the JUnit report, ``junit.py``), in key order.

    Attributes:
        unit: its columns, ``family``, ``higher_is_better``, ``variant`` and ``labels``, as a ``Finding.unit``.
        key: its unit columns' values (``Comparison.unit_columns``), as its findings' ``unit`` holds them.
        states: its state in the baseline and the current table (``ok``: scored, else the cell's status; None:
            that table lacks it).
        n_pairs: (seed, sample) pairs of its values compared: with the baseline's unit, or for a unit only the
            current table has, with the baseline's unit of other parameters it replaces; 0: nothing compared.
        identity: its model, dataset, method and metric as its JUnit testcase names them, the same from run to
            run (``names.UnitNames.identity``: registry names, which renaming a label does not change, each with
            its parameters that differ from its shipped config, which adding a variant does not change; the
            setting after the dataset). Empty: ``unit["labels"]``.
    """

    unit: dict
    key: tuple
    states: tuple[str | None, str | None]
    n_pairs: int
    identity: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """The outcome of ``compare_tables``: findings plus how much was compared."""

    findings: tuple[Finding, ...]
    policy: Policy
    n_units: int
    n_pairs: int
    n_differing: int
    max_abs_diff: float
    strict_changes: bool = False
    allow_missing: bool = False
    unused_overrides: tuple[str, ...] = ()  # policy entries naming no family/metric/control of either table (a typo?)
    recorded_controls: tuple[str, ...] = ()  # methods whose rows record the control role ("role": "control")
    coarse_tolerances: tuple[CoarseTolerance, ...] = ()  # metrics whose tolerance hides changes of >10% of scores
    units: tuple[ComparedUnit, ...] = ()  # every unit visited, in key order (the JUnit report's testcases)
    unit_columns: tuple[str, ...] = ()  # the columns naming a unit (``tables.unit_columns``)

    @property
    def failed(self) -> bool:
        return any(f.fails for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def of_kind(self, *kinds: str) -> list[Finding]:
        return [f for f in self.findings if f.kind in kinds]

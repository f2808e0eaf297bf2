"""Regression verdicts: compare a results table with a baseline under a tolerance policy (``xaibench compare``).

- ``policy``: tolerance policies (``conf/compare/<name>.yaml``): absolute/relative tolerances, statistical modes.
- ``tables``: loading and validating the two tables; which rows are the same measurement.
- ``values``: whether one method's paired scores on one metric changed (direction-aware).
- ``pairing``: both tables' rows by unit, their samples paired in one merge (no frame per unit).
- ``comparison``: every difference between two tables as findings (``findings``); pass/fail. The checks:
  ``unit_changes`` (unit by unit), ``controls`` (methods below a control), ``ranks``, ``revisions``.
- ``names``: how every output names a unit; ``change_text``: a value change and its test in words.
- ``render``: the Markdown report and the JSON verdict; ``junit``: the JUnit XML report; ``annotations``: GitHub's.
- ``baseline``: writing a committed baseline and its provenance, only on request.
"""
from xaibench.results.compare.comparison import Comparison, Finding, compare_tables
from xaibench.results.compare.policy import Policy, Tolerance, load_policy, parse_policy

__all__ = ["Comparison", "Finding", "Policy", "Tolerance", "compare_tables", "load_policy", "parse_policy"]

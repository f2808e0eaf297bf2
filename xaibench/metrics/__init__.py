"""Metrics: ``MetricSpec`` registrations (one module per family), the Quantus adapter, native counterfactual metrics.

Importing the package applies the numpy shims Quantus 0.6 needs (``_compat``).
"""
from xaibench.metrics import _compat  # noqa: F401

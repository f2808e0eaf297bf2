"""The explained-output choices (``explain_output``), importable without torch (the pre-flight uses them).

What each choice means is in ``xaibench/explainers/output.py``.
"""
EXPLAIN_OUTPUTS = ("log_odds", "log_softmax", "logit", "probability")
DEFAULT_EXPLAIN_OUTPUT = "log_odds"

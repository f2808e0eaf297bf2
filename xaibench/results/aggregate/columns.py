"""The summary's key columns, the table columns it reads and the columns it has, in order."""
from __future__ import annotations

GROUP = ["model", "dataset", "method", "metric"]
# Config columns that make two rows with the same names different experiments; seeds are replicates.
CONFIG = ["model_params", "dataset_params", "method_params", "params", "n_samples", "model_revision",
          "dataset_revision", "target_mode", "explain_output"]

# Every column summarize reads (a streaming caller converts only these to pandas).
INPUT_COLUMNS = GROUP + CONFIG + ["seed", "sample_id", "value", "status", "message", "family", "higher_is_better",
                                  "dataset_label", "model_label", "model_accuracy", "model_flag"]
LABELS = {"dataset_label": "dataset", "model_label": "model"}  # display-name column -> name column

# The summary's columns, in order (``summarizer.summarize`` says what each holds).
ORDER = ["model", "dataset", "method", "metric", "dataset_label", "model_label", "variant", "competitor",
         "comparison", "setting", "n_seeds", "family", "higher_is_better", "mean", "std", "n", "n_values", "ci_low",
         "ci_high", "nan_rate", "error_rate", "status", "message", "rank", "shared_mean", "model_accuracy",
         "model_flag", "role"]

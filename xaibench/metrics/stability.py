"""Stability / robustness metrics: do small input perturbations change the explanation?"""
import quantus

from xaibench.metrics.spec import Family, MetricSpec, register_metric

register_metric(MetricSpec(
    name="max_sensitivity",
    family=Family.STABILITY,
    higher_is_better=False,
    quantus_class=quantus.MaxSensitivity,
    needs_explain_func=True,
    defaults={"nr_samples": 10, "lower_bound": 0.1, "abs": False, "normalise": False,
              "return_nan_when_prediction_changes": False},
    call_defaults={"softmax": False},
    description="Yeh et al. 2019: max relative change of the explanation under uniform input noise.",
))

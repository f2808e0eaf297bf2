"""Sparsity / complexity metrics: how concentrated is the explanation?

They read the attribution only (no model call). A constant map is a legitimate input here (Gini 0, entropy
``log d``); an all-zero map is not (0/0), so only that is screened.
"""
import quantus

from xaibench.metrics.spec import Family, MetricSpec, register_metric

register_metric(MetricSpec(
    name="sparseness",
    family=Family.SPARSITY,
    higher_is_better=True,
    quantus_class=quantus.Sparseness,
    defaults={"abs": True, "normalise": True, "normalise_func": "normalise_by_max_per_sample"},
    call_defaults={"softmax": False},
    description="Chalasani et al. 2020: Gini index of the absolute attribution (1 = one feature carries it all).",
))

register_metric(MetricSpec(
    name="complexity",
    family=Family.SPARSITY,
    higher_is_better=False,
    quantus_class=quantus.Complexity,
    defaults={"abs": True, "normalise": True, "normalise_func": "normalise_by_max_per_sample"},
    call_defaults={"softmax": False},
    description="Bhatt et al. 2020: entropy of the attribution shares |a_i| / sum |a| (log d for a uniform map).",
))

register_metric(MetricSpec(
    name="effective_complexity",
    family=Family.SPARSITY,
    higher_is_better=False,
    quantus_class=quantus.EffectiveComplexity,
    defaults={"eps": 0.05, "abs": True, "normalise": True, "normalise_func": "normalise_by_max_per_sample"},
    call_defaults={"softmax": False},
    description="Nguyen & Martinez 2020: number of features whose |attribution| exceeds eps times the sample's "
                "largest (per-sample max normalisation makes eps relative).",
))

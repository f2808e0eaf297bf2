"""Sparsity / complexity metrics: how concentrated is the explanation?"""
import quantus

from xaibench.metrics.spec import Family, MetricSpec, register_metric

register_metric(MetricSpec(
    name="sparseness",
    family=Family.SPARSITY,
    higher_is_better=True,
    quantus_class=quantus.Sparseness,
    defaults={"abs": True, "normalise": True},
    description="Chalasani et al. 2020: Gini index of the absolute attribution.",
))

"""Faithfulness metrics: does removing what the explanation calls important change the prediction?"""
import quantus

from xaibench.metrics.spec import Family, MetricSpec, register_metric

register_metric(MetricSpec(
    name="faithfulness_correlation",
    family=Family.FAITHFULNESS,
    higher_is_better=True,
    quantus_class=quantus.FaithfulnessCorrelation,
    defaults={"nr_runs": 50, "subset_size": 0.25, "perturb_baseline": "black", "abs": False, "normalise": True},
    call_defaults={"softmax": False},
    fraction_params=("subset_size",),
    description="Bhatt et al. 2020: Pearson correlation of attribution sums and output drops over random subsets.",
))

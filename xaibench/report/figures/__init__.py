"""Paper figures, one module per figure; each function takes plain inputs (arrays, DataFrames) and returns a
matplotlib Figure; :func:`save_figure` writes it as PNG and PDF. Headless (Agg backend)."""
from xaibench.report.figures._style import ONE_COLUMN_IN, TWO_COLUMN_IN
from xaibench.report.figures.cd_diagram import cd_diagram, cd_groups
from xaibench.report.figures.cost_scatter import cost_score_points, cost_vs_score
from xaibench.report.figures.counterfactuals import counterfactual_examples
from xaibench.report.figures.gallery import attribution_gallery
from xaibench.report.figures.metric_agreement import metric_agreement
from xaibench.report.figures.metric_scores import metric_scores
from xaibench.report.figures.rank_heatmap import rank_heatmap
from xaibench.report.figures.save import save_figure
from xaibench.report.figures.surrogate_rules import surrogate_rules

__all__ = ["ONE_COLUMN_IN", "TWO_COLUMN_IN", "attribution_gallery", "cd_diagram", "cd_groups", "cost_score_points",
           "cost_vs_score", "counterfactual_examples", "metric_agreement", "metric_scores", "rank_heatmap",
           "save_figure", "surrogate_rules"]

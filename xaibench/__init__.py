"""xaibench: reproducible benchmarks of explanation methods (captum/shap/lime explainers, Quantus metrics)."""
from xaibench.errors import NotApplicable, UserError, XaiBenchError

__version__ = "0.5.0"
__all__ = ["run", "load", "summarize", "evaluate", "explain", "explanations", "XaiBenchError", "UserError", "NotApplicable", "__version__"]


def run(*args, **kwargs):
    """See :func:`xaibench.api.run`."""
    from xaibench.api import run as _run

    return _run(*args, **kwargs)


def load(*args, **kwargs):
    """See :func:`xaibench.api.load`."""
    from xaibench.api import load as _load

    return _load(*args, **kwargs)


def summarize(*args, **kwargs):
    """See :func:`xaibench.results.aggregate.summarize`."""
    from xaibench.results.aggregate import summarize as _summarize

    return _summarize(*args, **kwargs)


def evaluate(*args, **kwargs):
    """See :func:`xaibench.api.evaluate`: score attributions you already have with the suite's metrics."""
    from xaibench.api import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def explain(*args, **kwargs):
    """See :func:`xaibench.api.explain`: attributions from a registered method."""
    from xaibench.api import explain as _explain

    return _explain(*args, **kwargs)


def explanations(*args, **kwargs):
    """See :func:`xaibench.results.explanations.explanations`."""
    from xaibench.results.explanations import explanations as _explanations

    return _explanations(*args, **kwargs)

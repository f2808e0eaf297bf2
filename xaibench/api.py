"""Python API for notebooks: the same code path as the CLI (pre-flight, cells, sweep folder, summary).

    >>> import xaibench
    >>> table = xaibench.run(["model=mlp", "dataset=breast_cancer", "method=saliency,random"], multirun=True)
    >>> summary = xaibench.summarize(table)
"""
from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xaibench import sweep
from xaibench.config.plan import make_plan
from xaibench.errors import UserError
from xaibench.explainers.output_kinds import DEFAULT_EXPLAIN_OUTPUT


def run(overrides: Sequence[str] | str = (), *, multirun: bool = False, echo: bool = False) -> pd.DataFrame:
    """Run one cell (or, with ``multirun=True``, every combination of the sweep) and return the results table.

    Args:
        overrides: Hydra overrides exactly as on the command line, e.g. ``["model=cnn", "dataset=digits"]``;
            a string is split like a shell command line (``"model=cnn dataset=digits"``).
        multirun: expand sweeps (``method=a,b`` and an experiment's ``hydra.sweeper.params``).
        echo: print one line per cell and the summary, as the CLI does.

    Raises:
        UserError: bad input, before any compute (also: the sweep folder is in use by another run; a Hydra setting,
            launcher or sweeper that only the command line applies: ``xaibench -m ...`` hands them to Hydra).
        StorageError: the store or results folder cannot be written (e.g. the disk is full).
    """
    from xaibench.results.manifest import record_command

    overrides = _override_list(overrides)
    plan = make_plan(overrides, multirun=multirun)
    _refuse_hydra_settings(overrides)  # after the pre-flight (its refusals first), before anything is recorded
    _refuse_own_launcher(plan, overrides, multirun=multirun)
    record_command(overrides, multirun=multirun, api=True,  # compare checks the sweep folder's config against it
                   folders=[Path(str(cfg.results_dir)) / str(cfg.sweep_id) for cfg in plan.configs])
    return sweep.run_configs(plan.configs, multirun=multirun, echo=echo)


def _refuse_hydra_settings(overrides: list[str]) -> None:
    """``xaibench.run`` runs the sweep in this process, where Hydra's own settings (``hydra.job.env_set``,
    ``hydra.run.dir``, ``hydra/launcher=joblib``...) are not applied: the command line hands them to Hydra
    (``plan._needs_hydra``); here they were dropped without a word (the store went where ``env_set`` did not say)."""
    from xaibench.config.plan import _needs_hydra

    given = [o for o in overrides if _needs_hydra(o)]
    if given:
        raise UserError(f"xaibench.run runs the sweep in this process, which does not apply Hydra's own settings "
                        f"({given[0]}); leave it out, or run the sweep on the command line (xaibench ...), which "
                        f"hands them to Hydra")


def _refuse_own_launcher(plan, overrides: list[str], *, multirun: bool) -> None:
    """Hydra settings chosen in a config file, which the in-process run would drop: a launcher or sweeper (an
    experiment's ``defaults: [override /hydra/launcher: joblib]``: its jobs ran one after the other here),
    ``hydra.job.env_set``, ``chdir``, Hydra's folders (``plan.Plan.hydra_settings``), all without a word."""
    from xaibench.config.plan import BASIC

    launch = plan.launch
    if multirun and launch is not None and (launch.launcher, launch.sweeper) != BASIC:
        what, target = ("launcher", launch.launcher) if launch.launcher != BASIC[0] else ("sweeper", launch.sweeper)
        chosen = f"chooses Hydra's {target.rsplit('.', 1)[-1]} (hydra.{what})"
    elif plan.hydra_settings:
        chosen = f"sets {plan.hydra_settings[0]}"
    else:
        return
    command = shlex.join(["xaibench", *(["-m"] if multirun else []), *overrides])
    raise UserError(f"the sweep's config {chosen}, which xaibench.run does not apply: it runs every job in this "
                    f"process; run the sweep on the command line, which hands it to Hydra: {command}")


def _override_list(overrides: Sequence[str] | str) -> list[str]:
    if isinstance(overrides, str):
        try:
            return shlex.split(overrides)
        except ValueError as error:
            raise UserError(f"cannot split the overrides {overrides!r}: {error}") from None
    try:
        items = list(overrides)
    except TypeError:
        raise UserError(f"overrides must be a list of strings like ['model=mlp'], got {overrides!r}") from None
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise UserError(f"overrides must be strings like 'model=mlp', got {bad[0]!r}")
    return items


def load(path: str | Path) -> pd.DataFrame:
    """Load a results table: a ``.parquet``/``.csv`` file or a sweep folder.

    A sweep folder's table remembers the store its sweep ran with (``table.attrs["xaibench_store"]``), so that
    ``xaibench.explanations(table)`` finds its stored maps wherever it runs, as ``xaibench report`` does."""
    from xaibench.results.collect import load_table
    from xaibench.results.sweep_store import STORE_ATTR, sweep_store

    table = load_table(path)
    store = sweep_store(Path(path))
    if store is not None:
        table.attrs[STORE_ATTR] = store
    return table


def explain(model, x, *, method: str = "integrated_gradients", targets=None, seed: int = 0, batch_size: int = 64,
            modality: str | None = None, device: str = "cpu", explain_output: str = DEFAULT_EXPLAIN_OUTPUT,
            outputs: str = "logits", **params):
    """Attributions for ``x`` from a registered method (the sweep's explanation stage, without the store).

        >>> attributions = xaibench.explain(net, x, method="occlusion", window=4)

    Args:
        model: an ``nn.Module`` returning logits ``(N, K)`` (or probabilities, declared with ``outputs``), or a
            fitted scikit-learn classifier (``predict_proba``; model-agnostic methods only).
        x: inputs (tensor or array): tabular ``(N, F)``, image ``(N, C, H, W)``, time series ``(N, C, T)``,
            text token ids ``(N, L)`` (a model with ``embed``/``forward_embedded``).
        method: a registered method name; ``params`` are its parameters (checked like ``method.<param>=``).
        targets: classes to explain ``(N,)``; None explains the predicted classes.
        seed: stochastic methods draw from it; same seed, same attributions.
        modality: ``tabular``/``image``/``time_series``/``text``; default inferred from ``x``.
        explain_output: the model output explained (``xaibench/explainers/output.py``); the sweep's default.
        outputs: what a torch model returns, ``logits`` or ``probabilities`` (it ends in a softmax: explained
            through log-probabilities); checked on the first rows of ``x`` (``xaibench/models/outputs.py``).

    Returns:
        ``torch.Tensor`` attributions shaped like ``x`` (text: per token ``(N, L)``).

    The caller's model is left as it was: the same parameter tensors on the same devices, the same train/eval
    mode, ``requires_grad`` and gradients (``engine/caller_state.py``).

    Raises:
        UserError: unknown method or parameter, or a method that cannot explain this model/input.
    """
    from xaibench.engine.arrays import ArrayCell
    from xaibench.engine.caller_state import left_as_it_was

    with left_as_it_was(model):
        cell = ArrayCell.of(model, x, modality=modality, device=device, outputs=outputs)
        try:
            explainer = cell.explainer(method, params)
        except UserError as error:
            raise UserError(str(error) + _own_keyword_hint(params)) from None
        record = cell.explain(explainer, targets, seed=seed, batch_size=batch_size,
                              explain_output=_explain_output(explain_output))
    return record.attributions


def evaluate(model, x, y, attributions, metrics=("faithfulness_correlation", "sparseness", "max_sensitivity"), *,
             method: str | None = None, method_params: dict | None = None, masks=None, target: str = "predicted",
             train=None, seed: int = 0, sample_ids=None, modality: str | None = None,
             names: dict[str, str] | None = None, store_dir: str | Path | None = None,
             device: str = "cpu", explain_output: str = DEFAULT_EXPLAIN_OUTPUT,
             outputs: str = "logits") -> pd.DataFrame:
    """Score attributions you already have with the suite's metrics: the sweep's rows, without a sweep.

    Same metric parameters (suite defaults, overridable), same per-metric seeding (from ``seed`` and the scored
    content, so the same arrays and seed give the same values as a sweep's rows), same statuses
    (``ok``/``nan``/``not_applicable``/``error`` with a message) and the same long table schema.

        >>> table = xaibench.evaluate(net, x, y, a, metrics=["sparseness", "pixel_flipping"])

    Args:
        model: ``nn.Module`` returning logits ``(N, K)`` (or probabilities, declared with ``outputs``) or a fitted
            scikit-learn classifier.
        x: inputs ``(N, ...)`` (see :func:`explain`); y: labels ``(N,)``.
        attributions: shaped like ``x`` (text: ``(N, L)``).
        metrics: metric names, a ``{name: {params}}`` mapping, or a suite name (``"default"``, ``"full"``...).
        method, method_params: the method that made ``attributions``; metrics that re-explain (stability,
            randomisation) need it, and are ``not_applicable`` without it.
        masks: ground truth shaped like ``x`` (localisation metrics); target: ``predicted`` or ``label``.
        train: ``(x_train, y_train)`` for counterfactual plausibility metrics.
        names: display names ``{"model": ..., "dataset": ..., "method": ...}`` written in the rows.
        store_dir: cache the score stages in this store (nothing is written without it).
        explain_output: the model output the attributions explain (``xaibench/explainers/output.py``):
            metrics that re-explain explain the same output.
        outputs: what a torch model returns, ``logits`` or ``probabilities`` (see :func:`explain`).

    Returns:
        The long results table (``xaibench.results.schema``), one row per metric x sample. The caller's model is
        left as it was (see :func:`explain`).
    """
    from xaibench.engine.arrays import ArrayCell, metric_params
    from xaibench.engine.caller_state import left_as_it_was

    with left_as_it_was(model):
        cell = ArrayCell.of(model, x, modality=modality, device=device, y=y, masks=masks, train=train,
                            outputs=outputs)
        explainer = cell.explainer(method, method_params or {}) if method else None
        return cell.evaluate(attributions, metric_params(metrics), explainer=explainer, target=target, seed=seed,
                             sample_ids=sample_ids, names=names or {}, store_dir=store_dir,
                             explain_output=_explain_output(explain_output))


def _own_keyword_hint(params: dict) -> str:
    """``xaibench.explain(net, x, target=y)``: ``target`` went to the method as its parameter and was refused as
    one; name the keyword of ``explain`` it is close to (``targets``), else ""."""
    import difflib
    import inspect

    own = [name for name in inspect.signature(explain).parameters if name not in ("model", "x", "params")]
    close = {key: difflib.get_close_matches(key, own, n=1, cutoff=0.8) for key in params}
    hints = [f"{found[0]}=, not {key}=" for key, found in close.items() if found]
    return f"; explain's own keyword is {', '.join(hints)}" if hints else ""


def _explain_output(value: str) -> str:
    from xaibench.explainers.output_kinds import EXPLAIN_OUTPUTS

    if value not in EXPLAIN_OUTPUTS:
        raise UserError(f"explain_output must be one of {', '.join(EXPLAIN_OUTPUTS)}, got {value!r}")
    return value

"""Scoring from several threads of one process (joblib's threading backend, a caller's thread pool)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from quantus.helpers import asserts

from xaibench.metrics.constant_maps import constant_maps_accepted

X = np.zeros((2, 1, 4, 4))
CONSTANT = np.full(X.shape, 0.5)  # one non-zero value: Quantus refuses it ("uniformly distributed")


def _check() -> str:
    try:
        asserts.assert_attributions(x_batch=X, a_batch=CONSTANT)
    except AssertionError:
        return "refused"
    return "accepted"


def _interleaved(first, second) -> list[str]:
    """Run ``first(step)`` and ``second(step)`` in two threads; ``step(n)`` waits until both reached step ``n``,
    so the two threads' steps interleave in a fixed order. Returns what each recorded."""
    barrier, seen, errors = threading.Barrier(2, timeout=20), [], []

    def body(function) -> None:
        try:
            function(lambda: barrier.wait(), seen)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)
            barrier.abort()

    _start_and_join([threading.Thread(target=body, args=(f,)) for f in (first, second)], errors, timeout=30)
    return seen


def _start_and_join(threads: list[threading.Thread], errors: list[BaseException], timeout: float) -> None:
    """Start ``threads``, wait for each (at most ``timeout`` s), then re-raise the first error they recorded."""
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]


def test_constant_maps_accepted_relaxes_quantus_in_its_own_thread_only():
    """reliab11: ``constant_maps_accepted`` replaced Quantus' module attribute for the block, so (1) a metric scored
    meanwhile in another thread without the relaxation (an ordering metric, which must refuse a constant map)
    accepted it, and (2) a thread whose block started while another's was open kept nothing of its own: the other
    block's end restored Quantus' check under it, and its constant control was refused."""
    def relaxed_meanwhile(step, seen):
        with constant_maps_accepted():
            step()  # 1: the other thread checks while this block is open
            step()  # 2
            seen.append(("relaxed thread", _check()))

    def plain(step, seen):
        step()
        seen.append(("plain thread", _check()))
        step()

    assert sorted(_interleaved(relaxed_meanwhile, plain)) == [("plain thread", "refused"),
                                                             ("relaxed thread", "accepted")]

    def ends_first(step, seen):
        with constant_maps_accepted():
            step()  # 1: only this block is open
            step()  # 2: both blocks are open
        step()  # 3: this block has ended

    def ends_last(step, seen):
        step()
        with constant_maps_accepted():
            step()
            step()
            seen.append(("still relaxed", _check()))
        seen.append(("after", _check()))

    assert _interleaved(ends_first, ends_last) == [("still relaxed", "accepted"), ("after", "refused")]
    with pytest.raises(AssertionError, match="uniformly distributed"):  # outside any block: Quantus as it was
        asserts.assert_attributions(x_batch=X, a_batch=CONSTANT)


def test_two_threads_scoring_real_quantus_metrics_keep_their_stdout_and_warnings_apart(capsys):
    """rel14: ``call_quantus`` silenced Quantus with ``redirect_stdout`` and ``catch_warnings``, which swap
    process-wide state and restore what they saw on entry. Two threads whose calls end in another order than they
    began (A enters, B enters, A ends, B ends) left ``sys.stdout`` a discarded buffer and an ignore-all warning
    filter installed (every later print and warning of the process lost), and B's noise reached the terminal after
    A ended. Real Quantus metrics (pixel flipping, faithfulness estimate) in two threads, each model printing and
    warning (Python's and numpy's C-level warnings) on every forward; the first forward waits until both calls are
    open, and B's calls go on after A's ended."""
    import copy
    import sys
    import warnings
    from dataclasses import replace

    import torch

    from xaibench.metrics import testing
    from xaibench.metrics.quantus_adapter import build_batch, call_quantus, resolve_params
    from xaibench.registry import EXPLAINERS, METRICS
    from xaibench.types import Modality

    torch.manual_seed(0)
    model, x = testing.tiny_mlp(10, 3).eval(), torch.randn(6, 10)
    ctx = replace(testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency", {})), engine="quantus")
    jobs = {}
    for name in ("pixel_flipping", "faithfulness_estimate"):
        spec = METRICS.get(name)
        resolved = resolve_params(spec, {}, ctx)
        jobs[name] = (spec, resolved, call_quantus(spec, resolved, build_batch(spec, resolved, ctx))[0])
    both_open, first_ended, errors, scored = threading.Barrier(2, timeout=60), threading.Event(), [], {}

    def score(name: str, first: bool) -> None:
        spec, resolved, _ = jobs[name]
        own = copy.deepcopy(model)
        forwards = []

        def noisy(_module, _inputs) -> None:  # runs inside the Quantus call
            if not forwards:
                both_open.wait()
                if not first:
                    assert first_ended.wait(60)
            forwards.append(1)
            print(f"{name} noise")
            warnings.warn(f"{name} warns")
            np.float64(1.0) / np.float64(0.0)  # numpy's RuntimeWarning, raised from C

        own.register_forward_pre_hook(noisy)
        try:
            scored[name] = call_quantus(spec, resolved, build_batch(spec, resolved, replace(ctx, model=own)))[0]
            if first:
                print(f"{name} done")  # while the other thread's call is open
                warnings.warn(f"{name} done")
                first_ended.set()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)
            both_open.abort()
            first_ended.set()

    before = sys.stdout
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _start_and_join([threading.Thread(target=score, args=("pixel_flipping", True)),
                         threading.Thread(target=score, args=("faithfulness_estimate", False))], errors, timeout=120)
        print("main after")
        warnings.warn("main after")
        np.float64(1.0) / np.float64(0.0)
    assert sys.stdout is before
    assert capsys.readouterr().out.splitlines() == ["pixel_flipping done", "main after"]
    assert [str(w.message) for w in seen] == ["pixel_flipping done", "main after", "divide by zero encountered in "
                                                                                   "scalar divide"]
    for name, (_, _, reference) in jobs.items():  # and the scores are those of the same call alone
        np.testing.assert_array_equal(scored[name], reference)


def test_quiet_blocks_capture_each_threads_stdout_apart():
    """``quiet()`` gives each thread its own buffer; a thread outside any block prints where it did before."""
    import io
    import sys

    from xaibench.metrics.quiet import quiet

    captured, real = {}, io.StringIO()
    before, sys.stdout = sys.stdout, real
    try:
        def inside(name):
            def run(step, seen):
                with quiet() as buffer:
                    print(f"{name} 1")
                    step()  # both blocks open
                    print(f"{name} 2")
                    step()
                    if name == "a":
                        step()  # b ended its block first
                    captured[name] = buffer.getvalue()
                if name == "b":
                    step()
                print(f"{name} outside")
            return run

        _interleaved(inside("a"), inside("b"))
        assert sys.stdout is real
    finally:
        sys.stdout = before
    assert captured == {"a": "a 1\na 2\n", "b": "b 1\nb 2\n"}
    assert sorted(real.getvalue().splitlines()) == ["a outside", "b outside"]


def test_quiet_routes_writelines_and_leaves_a_missing_stdout_silent():
    """A quiet thread's ``writelines`` goes to its buffer too (it reached the terminal); with ``sys.stdout`` None
    (a process without a console) another thread's ``print`` writes nothing while a block is open, as it would
    without one (it raised AttributeError)."""
    import io
    import sys

    from xaibench.metrics.quiet import quiet

    real, errors = io.StringIO(), []
    before, sys.stdout = sys.stdout, real
    try:
        with quiet() as buffer:
            sys.stdout.writelines(["a\n", "b\n"])
        sys.stdout = None
        with quiet():
            worker = threading.Thread(target=lambda: _printing(errors))
            worker.start()
            worker.join()
        assert sys.stdout is None
    finally:
        sys.stdout = before
    assert buffer.getvalue() == "a\nb\n" and real.getvalue() == "" and errors == []


def _printing(errors: list) -> None:
    try:
        print("nowhere")
    except Exception as error:  # noqa: BLE001 - asserted in the test's thread
        errors.append(error)


def test_two_threads_explaining_keep_their_warning_filters_apart():
    """rel17: the explainers silenced captum's hook notices (guided backprop, DeepLIFT), LIME and SHAP with
    ``warnings.catch_warnings``, which swaps the process-wide filter list and restores what it saw on entry. Two
    threads explaining at once in the order A enters, B enters, A leaves, B leaves: A's exit removed B's ignore-all
    (B's warnings reached the user) and B's exit put A's filter back for good (the process ignored captum's notice
    from then on). Real guided backprop (A) and real LIME (B) on a tiny MLP whose forwards warn; the first forward of
    each waits until both blocks are open, and B's goes on only after A's call ended."""
    import copy
    import warnings

    import torch

    from xaibench.metrics import quiet, testing
    from xaibench.registry import EXPLAINERS

    torch.manual_seed(0)
    model, x = testing.tiny_mlp(10, 3).eval(), torch.randn(3, 10)
    target = torch.tensor([0, 1, 2])
    explainers = {"a": EXPLAINERS.create("guided_backprop", {}),
                  "b": EXPLAINERS.create("lime_library", {"n_samples": 40})}
    alone = {name: explainer.explain(copy.deepcopy(model), x, target).attributions
             for name, explainer in explainers.items()}
    both_open, a_ended, errors, explained = threading.Barrier(2, timeout=60), threading.Event(), [], {}

    def explain(name: str) -> None:
        own, forwards = copy.deepcopy(model), []

        def noisy(_module, inputs) -> None:  # runs inside the explainer's block
            if name == "a" and len(inputs[0]) == 1:
                return  # guided backprop's probe for functional ReLUs (one row), before its block
            if not forwards:
                both_open.wait()
                if name == "b":
                    assert a_ended.wait(60)
            forwards.append(1)
            warnings.warn(f"{name} noise")

        own.register_forward_pre_hook(noisy)
        try:
            explained[name] = explainers[name].explain(own, x, target).attributions
            if name == "a":
                warnings.warn("a done")  # while B's block is open
                a_ended.set()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)
            both_open.abort()
            a_ended.set()

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        _start_and_join([threading.Thread(target=explain, args=(name,)) for name in ("a", "b")], errors, timeout=120)
        after = list(warnings.filters)
        warnings.warn("Setting backward hooks on ReLU activations: from the main thread")
    assert [f for f in after if f is not quiet._FILTER] == [f for f in before if f is not quiet._FILTER]
    assert [str(w.message) for w in seen] == ["a noise", "a done",
                                              "Setting backward hooks on ReLU activations: from the main thread"]
    for name in explainers:  # and the explanations are those of each call alone
        torch.testing.assert_close(explained[name], alone[name], rtol=0, atol=0)


def test_two_threads_scoring_a_random_metric_at_once_each_get_their_calls_own_draws():
    """rel17: Quantus draws from numpy's global state, which ``score`` seeds before each call. Two threads scoring
    at once interleaved their draws: B seeding while A's call was drawing reset A's stream, and each got valid
    scores that were not its call's. Real faithfulness correlation (random feature subsets) in two threads: A's
    first forward (its call seeded, its draws to come) waits until B has drawn, or is held back from seeding (now:
    ``GLOBAL_RNG_LOCK``); both threads' scores must equal those of the same call alone, bit for bit."""
    import copy
    import linecache
    import sys
    import time
    from dataclasses import replace

    import torch

    from xaibench.metrics import quantus_adapter, testing
    from xaibench.registry import EXPLAINERS, METRICS
    from xaibench.types import Modality

    torch.manual_seed(0)
    model, x = testing.tiny_mlp(10, 3).eval(), torch.randn(6, 10)
    ctx = replace(testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency", {})), engine="quantus")
    spec, params, seeds = METRICS.get("faithfulness_correlation"), {"nr_runs": 20, "subset_size": 3}, (11, 12)
    alone = [quantus_adapter.score(spec, params, ctx, seed).values for seed in seeds]
    b_drew, errors, scored, b_thread = threading.Event(), [], {}, []

    def b_is_held() -> bool:
        """B waits to take the lock in ``score`` (its innermost frame there, at the ``with GLOBAL_RNG_LOCK``)."""
        frame = sys._current_frames().get(b_thread[0].ident) if b_thread and b_thread[0].ident else None
        return frame is not None and frame.f_code is quantus_adapter.score.__code__ and \
            "GLOBAL_RNG_LOCK" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)

    def run(name: str, seed: int) -> None:
        own, forwards = copy.deepcopy(model), []

        def pause(_module, _inputs) -> None:  # inside the Quantus call, after its seeding
            if not forwards and name == "a":
                b_thread.append(threading.Thread(target=run, args=("b", seeds[1])))
                b_thread[0].start()
                while not (b_drew.is_set() or b_is_held()) and not errors:
                    time.sleep(0.005)
            if not forwards and name == "b":
                b_drew.set()
            forwards.append(1)

        own.register_forward_pre_hook(pause)
        try:
            scored[name] = quantus_adapter.score(spec, params, replace(ctx, model=own), seed).values
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)

    _start_and_join([threading.Thread(target=run, args=("a", seeds[0]))], errors, timeout=120)
    b_thread[0].join(120)
    if errors:
        raise errors[0]
    assert not np.array_equal(alone[0], alone[1])  # the two calls' draws differ
    np.testing.assert_array_equal(scored["a"], alone[0])
    np.testing.assert_array_equal(scored["b"], alone[1])


def _held_at_rng_lock(thread: threading.Thread) -> bool:
    """Whether ``thread`` waits to take ``GLOBAL_RNG_LOCK`` (its innermost Python frame is at a ``with`` of it)."""
    import linecache
    import sys

    frame = sys._current_frames().get(thread.ident) if thread.ident else None
    return frame is not None and "GLOBAL_RNG_LOCK" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)


@pytest.mark.parametrize("other", ["seeded", "seed_everything"])
def test_another_threads_seeding_waits_for_a_scoring_call_holding_the_rng_lock(other):
    """review18: ``score`` holds ``GLOBAL_RNG_LOCK`` from seeding to its last draw, but an explainer's ``seeded``
    block (SmoothGrad, LIME, KernelSHAP) and the stages' ``seed_everything`` in another thread reseeded the global
    RNGs without it, in the middle of the metric's draws: the metric's stream was no longer its own. A holds the lock
    and draws twice; B seeds (``seeded(7)`` and draws inside it, or ``seed_everything(5)``) between A's draws unless
    held back. A's draws and B's must equal each alone."""
    from xaibench.engine.seeding import GLOBAL_RNG_LOCK, seed_everything
    from xaibench.explainers.seeding import seeded

    seed_everything(1)
    a_alone = [np.random.rand(), np.random.rand()]
    with seeded(7):
        b_alone = np.random.rand()
    a_drew, b_inside, errors, drawn = threading.Event(), threading.Event(), [], {}

    def b() -> None:
        if other == "seeded":
            with seeded(7):
                b_inside.set()
                a_drew.wait(timeout=20)
                drawn["b"] = np.random.rand()
        else:
            seed_everything(5)
            b_inside.set()

    def a() -> None:
        with GLOBAL_RNG_LOCK:
            seed_everything(1)
            drawn["a"] = [np.random.rand()]
            thread = threading.Thread(target=run, args=(b,))
            thread.start()
            while not (b_inside.is_set() or _held_at_rng_lock(thread)) and not errors:
                threading.Event().wait(0.005)
            drawn["a"].append(np.random.rand())
            a_drew.set()
        thread.join(timeout=20)

    def run(function) -> None:
        try:
            function()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)

    _start_and_join([threading.Thread(target=run, args=(a,))], errors, timeout=30)
    assert drawn["a"] == a_alone
    if other == "seeded":
        assert drawn["b"] == b_alone


def test_scikit_learn_parallel_runs_once_the_per_thread_warning_filter_is_installed():
    """review18: the quiet filter's message matcher (``quiet._ThreadRules``) stands in ``warnings.filters`` for a
    compiled regex, and scikit-learn's ``Parallel`` copies every filter into its workers through the regex's
    ``.pattern``: once any ``quiet()``/``ignore_warnings()`` block had run in the process (the filter stays first),
    every forest's ``predict_proba`` (a sklearn_estimator model, a cell's data step) raised ``AttributeError:
    '_ThreadRules' object has no attribute 'pattern'``. The forest's probabilities must be its trees' mean, both
    outside and inside a block."""
    import warnings

    from sklearn.ensemble import RandomForestClassifier

    from xaibench.metrics.quiet import _FILTER, ignore_warnings

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    with ignore_warnings(message="no such warning"):
        assert warnings.filters[0] is _FILTER
        forest = RandomForestClassifier(n_estimators=4, n_jobs=2, random_state=0).fit(x, y)
        inside = forest.predict_proba(x)
    outside = forest.predict_proba(x)
    trees = np.mean([tree.predict_proba(x) for tree in forest.estimators_], axis=0)
    np.testing.assert_allclose(inside, trees, rtol=0, atol=1e-12)
    np.testing.assert_allclose(outside, trees, rtol=0, atol=1e-12)

"""Cell keys: canonical, stable, sensitive to what changes results and blind to what must not."""
from dataclasses import replace

from xaibench.engine.cell import CellSpec
from xaibench.engine.keys import canonical_json, digest
from xaibench.engine.seeding import derive_seed


PINNED_KEY = "303535b1b9ced789a332c7874eacb6ab"  # update only with a SCHEMA_VERSION or package version bump (0.5.0)


def cell(**kw):
    base = dict(model={"name": "mlp", "hidden": [8]}, dataset={"name": "iris"}, method={"name": "saliency"},
                metrics={"sparseness": {}}, engine="quantus")
    base.update(kw)
    return CellSpec(**base)


def test_canonical_json_ignores_key_order():
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1}) == '{"a":[1,2],"b":1}'
    assert digest({"a": 1}) == digest({"a": 1}) != digest({"a": 2})


def test_key_is_pinned():
    """The key of a fixed config never changes silently (a change would orphan every stored result)."""
    assert cell().key == PINNED_KEY


def test_key_depends_on_result_sections_only():
    base = cell()
    assert replace(base, seed=1).key != base.key
    assert replace(base, n_samples=7).key != base.key
    assert replace(base, method={"name": "saliency", "abs": False}).key != base.key
    assert replace(base, metrics={"sparseness": {}, "complexity": {}}).key != base.key
    assert replace(base, target="label").key != base.key
    assert replace(base, explain_output="logit").key != base.key
    # Not in the key: device, batch size, strictness, the fast engine's chunk size.
    assert replace(base, device="cuda", batch_size=3, strict=True, chunk_size=7).key == base.key


def test_the_fast_engine_is_in_the_cell_and_score_keys():
    """Its scores equal plain Quantus' to 1e-6 but not bit for bit: a cached plain-Quantus stage is not reused."""
    plain, fast = cell(), cell(engine="fast")
    assert fast.key != plain.key
    assert fast.score_key("e", "sparseness") != plain.score_key("e", "sparseness")
    assert fast.explanation_key("m") == plain.explanation_key("m")


def test_stage_keys_separate_metric_from_explanation():
    base = cell()
    more = replace(base, metrics={"sparseness": {}, "complexity": {}})
    model_key = base.model_key("rev")
    assert more.model_key("rev") == model_key
    assert more.explanation_key(model_key) == base.explanation_key(model_key)
    expl = base.explanation_key(model_key)
    assert more.score_key(expl, "sparseness") == base.score_key(expl, "sparseness")
    assert base.model_key("other-revision") != model_key
    # what is explained changes the explanations, not the trained model
    logit = replace(base, explain_output="logit")
    assert logit.model_key("rev") == model_key and logit.explanation_key(model_key) != expl


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed("a") == derive_seed("a")
    assert derive_seed("a") != derive_seed("b")
    assert 0 <= derive_seed("a") < 2**31


def test_display_labels_are_in_no_key():
    """``model.label`` / ``dataset.label`` rename rows; they must not change results or orphan stored ones."""
    plain = CellSpec.from_config({"model": {"name": "mlp", "hidden": [8], "label": None},
                                  "dataset": {"name": "iris", "label": None}, "method": {"name": "saliency"},
                                  "metrics": {"sparseness": {}}})
    labelled = CellSpec.from_config({"model": {"name": "mlp", "hidden": [8], "label": "My MLP"},
                                     "dataset": {"name": "iris", "label": "Iris (UCI)"}, "method": {"name": "saliency"},
                                     "metrics": {"sparseness": {}}})
    assert labelled.key == plain.key == cell(engine="fast").key
    assert labelled.model_key("rev") == plain.model_key("rev")
    assert (labelled.model_label, labelled.dataset_label) == ("My MLP", "Iris (UCI)")
    assert (plain.model_label, plain.dataset_label) == ("mlp", "iris")


def test_the_same_files_at_another_path_train_explain_and_score_with_the_same_keys_and_seeds():
    """The model key (and the seeds derived from it) held the data file's path: the same CSV copied to a cluster's
    scratch disk trained another model (accuracy 0.88 vs 0.83, byo11). The data revision and the weights' digest
    stand for the contents; class names (``estimator``, ``target``) stay, and so does a weights path whose content
    is not fingerprinted."""
    def user(path, weights=None, target="bought"):
        model = {"name": "torch_module", "target": "nets.Net", "state_dict": weights}
        return CellSpec.from_config({"model": model, "dataset": {"name": "csv_table", "path": path, "target": target},
                                     "method": {"name": "saliency"}, "metrics": {"sparseness": {}}})

    here, there = user("data/shop.csv"), user("/scratch/me/shop.csv")
    assert here.key != there.key  # the cell (its config) is another; its stages are shared
    for versioned in (True, False):
        assert here.model_key("rev", versioned=versioned) == there.model_key("rev", versioned=versioned)
        assert here.explanation_key(here.model_key("rev")) == there.explanation_key(there.model_key("rev"))
    assert here.model_key("rev") != here.model_key("other-rev")  # other contents: another model
    assert user("a.csv", target="churn").model_key("rev") != here.model_key("rev")
    moved = user("a.csv", "w1.pt"), user("b.csv", "w2.pt")
    assert moved[0].model_key("rev", "sha-w") == moved[1].model_key("rev", "sha-w")
    assert moved[0].model_key("rev") != moved[1].model_key("rev")  # no digest of the weights: their path stays
    net = {"name": "torch_module", "target": "other.Net", "state_dict": "w1.pt"}
    assert replace(moved[0], model=net).model_key("rev", "sha-w") != moved[0].model_key("rev", "sha-w")

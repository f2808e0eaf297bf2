"""Hugging Face text: raw-text CSV tokenised by a local tokenizer folder, a tiny saved BERT, the attention mask
honoured in forwards and in every perturbation, attributions per word with the text."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import xaibench
from tests.conftest import FAST_METRICS
from xaibench.data.user.text import load_tokenizer, word_attributions
from xaibench.engine.datasets import build_dataset
from xaibench.errors import UserError
from xaibench.explainers.inputs import GradientView
from xaibench.registry import DATASETS, EXPLAINERS, MODELS

transformers = pytest.importorskip("transformers")
WORDS = ["good", "great", "fine", "bad", "awful", "poor", "movie", "plot", "the", "was", "really"]
MAX_LENGTH = 12


def save_tokenizer(folder):
    """A WordLevel tokenizer ([CLS] text [SEP], whitespace words) saved as a PreTrainedTokenizerFast folder."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2),
                                                                                                 ("[SEP]", 3)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                                cls_token="[CLS]", sep_token="[SEP]")
    fast.save_pretrained(folder)
    return folder


def save_bert(folder, vocab_size=len(WORDS) + 4):
    config = transformers.BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=MAX_LENGTH, num_labels=2,
                                     pad_token_id=0, initializer_range=0.5)
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def save_reviews(path, n=24):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        positive = i % 2 == 0
        words = list(rng.choice(["good", "great", "fine"] if positive else ["bad", "awful", "poor"], 1 + i % 3))
        rows.append({"text": " ".join(["the", "movie", "was", *words]), "label": "pos" if positive else "neg"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf_text")
    tokenizer, bert = save_tokenizer(root / "tokenizer"), save_bert(root / "bert")
    csv = save_reviews(root / "reviews.csv")
    data = build_dataset(DATASETS.create("text_csv", {"path": str(csv), "target": "label", "tokenizer": str(tokenizer),
                                                      "max_length": MAX_LENGTH}), 0)
    module = MODELS.create("hf_sequence_classifier", {"path": str(bert)}).build(data).eval()
    return root, data, module


def test_raw_text_is_tokenised_with_the_local_tokenizer(assets):
    root, data, _ = assets
    logging = transformers.utils.logging  # loading bars and info logs stay quiet unless verbose=true
    assert logging.get_verbosity() == logging.ERROR and not logging.is_progress_bar_enabled()
    tokenizer = load_tokenizer(str(root / "tokenizer"), "test")
    assert data.test.x.shape[1] == MAX_LENGTH and data.vocab_size == len(WORDS) + 4
    first = data.test.x[0].tolist()
    assert first[0] == 2 and 3 in first and first[-1] == 0  # [CLS] ... [SEP] [PAD]...
    assert tokenizer.decode([t for t in first if t > 3]).split()[:2] == ["the", "movie"]


def test_a_semicolon_file_of_texts_reads_with_sep(assets):
    """text_csv takes ``sep`` as csv_table does: the same reviews as ``text;label`` give the same token ids, and
    without it the one-column read is refused naming the option."""
    root, data, _ = assets
    frame = pd.read_csv(root / "reviews.csv")
    frame.to_csv(root / "reviews_semi.csv", sep=";", index=False)
    params = {"path": str(root / "reviews_semi.csv"), "target": "label", "tokenizer": str(root / "tokenizer"),
              "max_length": MAX_LENGTH}
    semi = build_dataset(DATASETS.create("text_csv", {**params, "sep": ";"}), 0)
    assert torch.equal(semi.test.x, data.test.x) and torch.equal(semi.test.y, data.test.y)
    with pytest.raises(UserError, match="reads as one column 'text;label' with sep=','"):
        build_dataset(DATASETS.create("text_csv", params), 0)


def test_texts_cut_at_max_length_or_mostly_unknown_words_are_warned_of(assets, capsys):
    """Texts longer than ``max_length`` were cut without a word (a real review runs to hundreds of tokens, the
    default keeps 32), and a tokenizer that is not the model's (most words ``[UNK]``) went unnoticed."""
    root, data, _ = assets
    frame = pd.read_csv(root / "reviews.csv")
    frame.loc[[0, 3], "text"] = "the movie was really really really really really really really good"
    frame.to_csv(root / "long.csv", index=False)
    frame.assign(text="la película fue muy buena").to_csv(root / "foreign.csv", index=False)
    params = {"target": "label", "tokenizer": str(root / "tokenizer"), "max_length": MAX_LENGTH}
    build_dataset(DATASETS.create("text_csv", {**params, "path": str(root / "reviews.csv")}), 0)
    assert capsys.readouterr().err == ""  # every review fits, every word is known
    long = build_dataset(DATASETS.create("text_csv", {**params, "path": str(root / "long.csv")}), 0)
    assert long.test.x.shape[1] == MAX_LENGTH  # cut as before, now said
    assert ("dataset text_csv: 2 of 24 texts are longer than max_length=12 tokens (up to 13) and are cut to their "
            "first 12: the model never sees the rest; raise dataset.max_length") in capsys.readouterr().err
    build_dataset(DATASETS.create("text_csv", {**params, "path": str(root / "foreign.csv")}), 0)
    assert ("dataset text_csv: 100% of the tokens of the texts are the tokenizer's unknown token '[UNK]': is "
            "dataset.tokenizer the model's own tokenizer?") in capsys.readouterr().err


def test_padding_does_not_change_predictions(assets):
    root, data, module = assets
    tokenizer = load_tokenizer(str(root / "tokenizer"), "test")
    text = "the movie was really great"
    short = torch.tensor([tokenizer(text)["input_ids"]])
    padded = torch.tensor([tokenizer(text, padding="max_length", max_length=MAX_LENGTH)["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(module(padded), module(short), rtol=0, atol=1e-5)
        embeddings = module.model.get_input_embeddings()(padded)
        unmasked = module.model(inputs_embeds=embeddings).logits  # what the adapter did before: padding attended
        assert (unmasked - module(short)).abs().max() > 1e-2
        torch.testing.assert_close(module.forward_embedded(module.embed(padded)), module(padded))


def test_perturbations_keep_the_attention_mask(assets):
    _, data, module = assets
    ids = data.test.x[:4]
    padding = ids == module.pad_id
    assert padding.any()
    target = module(ids).argmax(dim=1)
    view = GradientView.of(module, ids)
    baselines = view.baselines(0.0)
    assert torch.equal(baselines[..., -1], (~padding).float())  # IG's path keeps the input's mask
    ig = EXPLAINERS.create("integrated_gradients", {"n_steps": 64}).explain(module, ids, target).attributions
    with torch.no_grad():
        gap = (module.forward_embedded(view.inputs) - module.forward_embedded(baselines)).gather(1, target[:, None])
    torch.testing.assert_close(ig.sum(dim=1), gap.squeeze(1), rtol=0, atol=0.02)  # completeness: no jump on the path
    occlusion = EXPLAINERS.create("occlusion", {"window": 1, "stride": 1}).explain(module, ids, target).attributions
    assert occlusion[padding].abs().max() < 1e-6 < occlusion[~padding].abs().max()  # occluding padding: no change
    noisy = module.embed(ids) + 0.1 * torch.randn(*ids.shape, 17)
    assert torch.equal(noisy[..., -1] > 0.5, ~padding)  # Quantus' noise perturbations keep the mask too


@pytest.mark.slow
def test_sweep_on_raw_text_and_per_word_attributions(assets, workdir):
    root, data, module = assets
    table = xaibench.run(["model=hf_sequence_classifier", f"model.path={root / 'bert'}", "dataset=text_csv",
                          f"dataset.path={root / 'reviews.csv'}", "dataset.target=label",
                          f"dataset.tokenizer={root / 'tokenizer'}", f"dataset.max_length={MAX_LENGTH}",
                          "method=integrated_gradients", "n_samples=4", "metrics=default", *FAST_METRICS])
    assert set(table["status"]) <= {"ok", "nan"} and (table["status"] == "ok").any()
    text = "the movie was really great"
    tokenizer = load_tokenizer(str(root / "tokenizer"), "test")
    ids = torch.tensor([tokenizer(text, padding="max_length", max_length=MAX_LENGTH)["input_ids"]])
    attributions = xaibench.explain(module, ids, method="integrated_gradients")
    words = word_attributions(tokenizer, text, attributions[0], MAX_LENGTH)
    assert words["word"].tolist() == text.split()
    special = (ids[0] <= 3)
    assert words["attribution"].sum() == pytest.approx(float(attributions[0][~special].sum()), abs=1e-6)
    from xaibench.report.explanation_figures import cell_gallery
    from xaibench.results.explanations import explanations

    (cell,) = explanations(table, store="results/store", samples=2)  # the report's gallery shows the tokens
    figure = cell_gallery([cell])
    for j, ids in enumerate(cell.inputs):
        shown = [t.get_text() for t in figure.axes[2 + j].texts]
        assert shown == tokenizer.convert_ids_to_tokens([int(i) for i in ids if i != tokenizer.pad_token_id])
        assert shown[0] == "[CLS]" and shown[-1] == "[SEP]" and "movie" in shown
    assert {ax.get_title().split("\n")[1].split(" / ")[0] for ax in figure.axes[:2]} <= {"pred neg", "pred pos"}

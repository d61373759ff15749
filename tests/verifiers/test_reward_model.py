"""The torch reward-model verifier with tiny randomly initialised models built here.

Skipped where torch/transformers are not installed (they are an optional extra).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from swescale.types import Candidate, Task  # noqa: E402
from swescale.verifiers.reward_model import RewardModelVerifier  # noqa: E402

TASK = Task(id="t", repo="o/r", base_commit="abc", problem_statement="slugify keeps double dashes")
WORDS = [
    "YES",
    "NO",
    "Yes",
    "No",
    "yes",
    "no",
    "ANSWER",
    ":",
    "issue",
    "patch",
    "the",
    "a",
    "slugify",
    "dashes",
    "fix",
    "diff",
    "+",
    "-",
    "=",
    "x",
    "y",
    "Does",
    "this",
    "resolve",
    "End",
    "with",
    "or",
]


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "[PAD]": 1}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]"
    )


def tiny_config(**kw):
    torch.manual_seed(0)
    return transformers.GPT2Config(
        vocab_size=len(WORDS) + 2, n_positions=512, n_embd=16, n_layer=1, n_head=2,
        pad_token_id=1, **kw,
    )  # fmt: skip


def cands():
    return [
        Candidate(id="c1", task_id="t", patch="--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"),
        Candidate(id="c2", task_id="t", patch="slugify fix dashes = x y y y"),
    ]


def test_causal_lm_read_by_yes_no_logits(tmp_path):
    model = transformers.GPT2LMHeadModel(tiny_config())
    tokenizer = tiny_tokenizer()
    verifier = RewardModelVerifier(model=model, tokenizer=tokenizer)
    assert verifier.kind == "causal_lm"
    verdicts = verifier.verify(TASK, cands())
    scores = [verdicts[c].score for c in ("c1", "c2")]
    assert all(0.0 < s < 1.0 for s in scores) and scores[0] != scores[1]
    # The score is the YES mass over YES+NO at the next token, computed by hand here.
    text = verifier.prompt(TASK, cands()[0].patch)
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        probs = torch.softmax(model(ids).logits[0, -1], dim=-1)
    yes = sum(probs[tokenizer.convert_tokens_to_ids(t)] for t in ("YES", "Yes", "yes"))
    no = sum(probs[tokenizer.convert_tokens_to_ids(t)] for t in ("NO", "No", "no"))
    assert scores[0] == pytest.approx(float(yes / (yes + no)), rel=1e-4)
    # Any checkpoint: the same model saved and loaded back from a directory.
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    loaded = RewardModelVerifier(str(tmp_path / "ckpt"))
    assert loaded.verify(TASK, cands())["c1"].score == pytest.approx(scores[0], rel=1e-4)


def test_sequence_classification_checkpoint(tmp_path):
    cfg = tiny_config(num_labels=2, id2label={0: "bad", 1: "good"}, label2id={"bad": 0, "good": 1})
    model = transformers.GPT2ForSequenceClassification(cfg)
    tokenizer = tiny_tokenizer()
    model.save_pretrained(tmp_path / "cls")
    tokenizer.save_pretrained(tmp_path / "cls")
    verifier = RewardModelVerifier(str(tmp_path / "cls"))
    assert verifier.kind == "classification"
    verdicts = verifier.verify(TASK, cands())
    text = verifier.prompt(TASK, cands()[1].patch)
    with torch.no_grad():
        logits = verifier.model(**tokenizer(text, return_tensors="pt")).logits[0]
    assert verdicts["c2"].score == pytest.approx(float(torch.softmax(logits, -1)[1]), rel=1e-4)
    assert verdicts["c2"].verifier == "reward_model"


def test_bad_checkpoint_is_a_clear_error(tmp_path):
    from swescale.verifiers.reward_model import RewardModelUnavailable

    with pytest.raises(RewardModelUnavailable, match="cannot load checkpoint"):
        RewardModelVerifier(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="checkpoint"):
        RewardModelVerifier()

"""A reward-model verifier: any Hugging Face checkpoint scores (issue, patch) pairs.

Two kinds of checkpoint are read:
  classification  ``AutoModelForSequenceClassification``: P(good) is the sigmoid of a
                  single logit, or the softmax mass of the label named good/yes/1
  causal_lm       ``AutoModelForCausalLM``: the judge prompt, then P(YES) from the
                  next-token logits, normalized over YES-like and NO-like tokens
torch and transformers are an optional extra (``pip install swescale[torch]``) and are
imported only when this verifier is built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from swescale.types import Candidate, Cost, Task, Verdict
from swescale.verifiers.base import REWARD_MODEL
from swescale.verifiers.judge import answer_word, judge_messages

log = logging.getLogger(__name__)

YES_NO_VARIANTS = (
    "YES",
    "Yes",
    "yes",
    " YES",
    " Yes",
    " yes",
    "NO",
    "No",
    "no",
    " NO",
    " No",
    " no",
)
_GOOD_LABELS = ("good", "yes", "positive", "correct", "resolved", "label_1", "1")


class RewardModelUnavailable(ImportError):
    """torch/transformers are missing, or the checkpoint cannot be loaded."""


def _import_torch() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise RewardModelUnavailable(
            "the reward-model verifier needs torch and transformers: "
            "pip install 'swescale[torch]' (CPU: pip install torch==2.13.0 transformers)"
        ) from exc
    return torch, transformers


def _good_label_index(id2label: dict[int, str] | None, num_labels: int) -> int:
    for index, label in (id2label or {}).items():
        if str(label).lower() in _GOOD_LABELS:
            return int(index)
    return num_labels - 1


class RewardModelVerifier:
    name = REWARD_MODEL

    def __init__(
        self,
        checkpoint: str | None = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        kind: str = "auto",
        device: str = "cpu",
        max_length: int = 2048,
    ) -> None:
        torch, transformers = _import_torch()
        self.torch = torch
        if model is None or tokenizer is None:
            if not checkpoint:
                raise ValueError("give a checkpoint (name or directory) or a model and tokenizer")
            model, tokenizer, kind = self._load(transformers, checkpoint, kind)
        if kind == "auto":
            named = type(model).__name__
            kind = "classification" if "SequenceClassification" in named else "causal_lm"
        if kind not in ("classification", "causal_lm"):
            raise ValueError(f"kind must be classification, causal_lm or auto, got {kind!r}")
        self.kind = kind
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.max_length = max_length
        self.yes_ids, self.no_ids = self._answer_token_ids() if kind == "causal_lm" else ([], [])

    @staticmethod
    def _load(transformers: Any, checkpoint: str, kind: str) -> tuple[Any, Any, str]:
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
            config = transformers.AutoConfig.from_pretrained(checkpoint)
            if kind == "auto":
                archs = " ".join(getattr(config, "architectures", None) or [])
                kind = "classification" if "SequenceClassification" in archs else "causal_lm"
            loader = (
                transformers.AutoModelForSequenceClassification
                if kind == "classification"
                else transformers.AutoModelForCausalLM
            )
            return loader.from_pretrained(checkpoint), tokenizer, kind
        except (OSError, ValueError) as exc:
            raise RewardModelUnavailable(f"cannot load checkpoint {checkpoint!r}: {exc}") from exc

    def _answer_token_ids(self) -> tuple[list[int], list[int]]:
        yes, no = set(), set()
        for variant in YES_NO_VARIANTS:
            ids = self.tokenizer.encode(variant, add_special_tokens=False)
            if len(ids) != 1:
                continue  # only single-token spellings can be read from one position
            (yes if answer_word(variant) == "yes" else no).add(ids[0])
        if not yes or not no:
            raise RewardModelUnavailable("the tokenizer has no single-token YES and NO")
        return sorted(yes), sorted(no)

    def prompt(self, task: Task, patch: str) -> str:
        messages = judge_messages(task, patch)
        template = getattr(self.tokenizer, "chat_template", None)
        if self.kind == "causal_lm" and template:
            return (
                self.tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True
                )
                + "ANSWER:"
            )
        return "\n\n".join(m["content"] for m in messages) + "\nANSWER:"

    def score_text(self, text: str) -> float:
        torch = self.torch
        enc = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=self.max_length)
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        with torch.no_grad():
            logits = self.model(**enc).logits
        if self.kind == "classification":
            row = logits[0].float()
            if row.numel() == 1:
                return float(torch.sigmoid(row[0]))
            good = _good_label_index(getattr(self.model.config, "id2label", None), row.numel())
            return float(torch.softmax(row, dim=-1)[good])
        last = torch.log_softmax(logits[0, -1].float(), dim=-1)
        yes = torch.logsumexp(last[self.yes_ids], dim=0)
        no = torch.logsumexp(last[self.no_ids], dim=0)
        return float(torch.sigmoid(yes - no))

    def score_pairs(self, task: Task, patches: Sequence[str]) -> list[float]:
        return [self.score_text(self.prompt(task, p)) for p in patches]

    def verify(self, task: Task, candidates: list[Candidate]) -> dict[str, Verdict]:
        import time

        verdicts = {}
        for cand in candidates:
            start = time.monotonic()
            score = self.score_text(self.prompt(task, cand.patch))
            verdicts[cand.id] = Verdict(
                verifier=self.name,
                score=score,
                passed=score >= 0.5,
                details={"kind": self.kind},
                cost=Cost(model_seconds=time.monotonic() - start),
            )
        return verdicts

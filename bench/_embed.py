"""Sentence embeddings of all-MiniLM-L6-v2 (and of its held-out sibling paraphrase-MiniLM-L3-v2) in
numpy, for measuring what compression does to the model.

The model (a BERT of any depth, mean pooling, L2 normalisation: what sentence-transformers runs for
both) and its WordPiece tokenizer (the two share it) are written out here so the benchmark needs neither
torch nor transformers; ``bench_rd.py --check-reference`` compares them with sentence-transformers
where that is installed. The sentences are built in: a few hundred, varied, deterministic.
"""

from __future__ import annotations

import itertools
import math
import os
import unicodedata

import numpy as np

HEADS = 12
EPS = 1e-12


# ---------------------------------------------------------------------------------------------
# tokenizer (BERT uncased: lower case, accents stripped, punctuation split, WordPiece)
# ---------------------------------------------------------------------------------------------
class WordPiece:
    def __init__(self, vocab_path: str):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        self.cls, self.sep, self.unk = self.vocab["[CLS]"], self.vocab["[SEP]"], self.vocab["[UNK]"]

    @staticmethod
    def _is_punct(ch: str) -> bool:
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    def _basic(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        words, cur = [], []
        for ch in text:
            if ch.isspace():
                if cur:
                    words.append("".join(cur))
                    cur = []
            elif self._is_punct(ch):
                if cur:
                    words.append("".join(cur))
                    cur = []
                words.append(ch)
            else:
                cur.append(ch)
        if cur:
            words.append("".join(cur))
        return words

    def _pieces(self, word: str) -> list[int]:
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    out.append(self.vocab[piece])
                    break
                end -= 1
            else:
                return [self.unk]
            start = end
        return out

    def encode(self, text: str, max_len: int = 128) -> list[int]:
        ids = [i for w in self._basic(text) for i in self._pieces(w)]
        return [self.cls] + ids[:max_len - 2] + [self.sep]


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
def _layer_norm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * g + b


def _erf(x):
    """erf to 1.5e-7 (Abramowitz and Stegun 7.1.26): the same function for every model compared."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def embed(tensors: dict[str, np.ndarray], batches: list[tuple[np.ndarray, np.ndarray]], record=None) -> np.ndarray:
    """L2-normalised mean-pooled embeddings (float32) of token batches ``(ids, mask)``;
    ``record(weight_name, inputs, mask)`` sees the input of every linear layer."""
    t = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items() if k != "embeddings.position_ids"}
    layers = sum(1 for k in t if k.startswith("encoder.layer.") and k.endswith(".output.dense.weight")
                 and ".attention." not in k)
    out = []
    for ids, mask in batches:
        n, length = ids.shape
        x = (t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:length]
             + t["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
        bias = (1.0 - mask[:, None, None, :]) * -1e9
        for i in range(layers):
            p = f"encoder.layer.{i}."
            hd = x.shape[-1] // HEADS

            def proj(name):
                if record:
                    record(p + f"attention.self.{name}.weight", x, mask)
                y = x @ t[p + f"attention.self.{name}.weight"].T + t[p + f"attention.self.{name}.bias"]
                return y.reshape(n, length, HEADS, hd).transpose(0, 2, 1, 3)

            q, k, v = proj("query"), proj("key"), proj("value")
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(0, 2, 1, 3).reshape(n, length, -1)
            if record:
                record(p + "attention.output.dense.weight", a, mask)
            a = a @ t[p + "attention.output.dense.weight"].T + t[p + "attention.output.dense.bias"]
            x = _layer_norm(a + x, t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"])
            if record:
                record(p + "intermediate.dense.weight", x, mask)
            h = _gelu(x @ t[p + "intermediate.dense.weight"].T + t[p + "intermediate.dense.bias"])
            if record:
                record(p + "output.dense.weight", h, mask)
            h = h @ t[p + "output.dense.weight"].T + t[p + "output.dense.bias"]
            x = _layer_norm(h + x, t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"])
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.concatenate(out)


def input_importance(tensors: dict[str, np.ndarray], batches) -> dict[str, np.ndarray]:
    """The mean squared input of each linear layer's input features over the tokens of ``batches``
    (what ``codec.torch.collect_importance`` computes with hooks on a torch model)."""
    sums: dict = {}

    def record(name, x, mask):
        rows = x.reshape(-1, x.shape[-1])[mask.reshape(-1) > 0].astype(np.float64)
        s, n = sums.get(name, (0.0, 0))
        sums[name] = (s + (rows ** 2).sum(0), n + rows.shape[0])

    embed(tensors, batches, record)
    return {k: s / n for k, (s, n) in sums.items()}


def batches(tokenizer: WordPiece, sentences: list[str], size: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    """Padded token batches, sentences of similar length together."""
    encoded = sorted((tokenizer.encode(s) for s in sentences), key=len)
    out = []
    for i in range(0, len(encoded), size):
        group = encoded[i:i + size]
        length = max(map(len, group))
        ids = np.zeros((len(group), length), dtype=np.int64)
        mask = np.zeros((len(group), length), dtype=np.float32)
        for j, e in enumerate(group):
            ids[j, :len(e)] = e
            mask[j, :len(e)] = 1.0
        out.append((ids, mask))
    return out


# ---------------------------------------------------------------------------------------------
# sentences
# ---------------------------------------------------------------------------------------------
_SUBJECTS = ["The old fisherman", "A young engineer", "My neighbour's cat", "The city council", "Our research team",
             "A tired nurse", "The quantum computer", "Every student", "The orchestra", "A small startup",
             "The weather service", "Grandma", "The football coach", "A curious child", "The central bank"]
_VERBS = ["repaired", "ignored", "celebrated", "predicted", "questioned", "painted", "sold", "described",
          "rejected", "discovered", "measured", "translated"]
_OBJECTS = ["the broken bridge", "a surprising result", "the annual budget", "an ancient manuscript",
            "the storm warning", "three red apples", "the software update", "a complicated recipe",
            "the election results", "a hidden treasure", "the new vaccine", "an empty stadium"]
_ENDINGS = ["yesterday.", "before the deadline.", "with great enthusiasm.", "without telling anyone.",
            "in the middle of the night.", "?", "— nobody expected that.", "for the third time this year."]
_FIXED = [
    "How do I reset my password if I forgot the email address?",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The stock market fell 3% after the announcement.",
    "Can you recommend a good vegetarian restaurant near the train station?",
    "Mitochondria are the powerhouse of the cell.",
    "I can't believe it's already December!",
    "The defendant pleaded not guilty to all charges.",
    "Water boils at 100 degrees Celsius at sea level.",
    "Please submit the report by Friday at 5 pm.",
    "She plays the violin beautifully.",
    "Is it safe to drink tap water in Lisbon?",
    "The algorithm runs in O(n log n) time.",
    "Heavy rain caused flooding in several villages.",
    "He scored the winning goal in the final minute.",
    "Machine learning models can overfit small datasets.",
    "What time does the museum open on Sundays?",
]


def sentences(count: int = 300, seed: int = 0) -> list[str]:
    """``count`` varied sentences (deterministic): fixed ones, then template combinations."""
    rng = np.random.default_rng(seed)
    combos = list(itertools.product(_SUBJECTS, _VERBS, _OBJECTS, _ENDINGS))
    picks = rng.choice(len(combos), size=max(0, count - len(_FIXED)), replace=False)
    out = list(_FIXED)
    for i in picks:
        s, v, o, e = combos[int(i)]
        out.append(f"{s} {v} {o}{e}" if e == "?" else f"{s} {v} {o} {e}")
    return out[:count]


def vocab_path(model_file: str) -> str:
    return os.path.join(os.path.dirname(model_file), "vocab.txt")

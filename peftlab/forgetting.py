"""What a fine-tune costs the model elsewhere: a probe of what MiniLM could do before it.

all-MiniLM-L6-v2 was trained to embed sentences (mean of the last hidden states over the real
tokens, then unit length, as its sentence-transformers configuration says). Fine-tuning its
encoder for another task (a review classifier) moves those embeddings. Two measures, both on
texts the fine-tune never saw:

- ``probe_accuracy``: nearest-centroid accuracy of the embeddings on a second task (e.g. the
  category of an instruction). Nothing is trained for it, so it reads what the representation
  still separates.
- ``embedding_cosine``: mean cosine between each held-out text's embedding after the fine-tune
  and before it (1.0: unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import BertModel


def encoder_of(model: torch.nn.Module) -> BertModel:
    """The BERT encoder inside a classifier, a peft model or a bare encoder (adapters active)."""
    for module in model.modules():
        if isinstance(module, BertModel):
            return module
    raise TypeError(f"no BertModel inside {type(model).__name__}: the probe reads MiniLM's encoder")


@torch.no_grad()
def sentence_embeddings(model: torch.nn.Module, tokenizer, texts: Sequence[str],
                        batch_size: int = 128, max_length: int = 64) -> torch.Tensor:
    """Unit-length mean-pooled embeddings, one row per text (all-MiniLM-L6-v2's pooling)."""
    encoder = encoder_of(model)
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    rows = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt").to(device)
        hidden = encoder(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
        rows.append(torch.nn.functional.normalize(mean, dim=-1).cpu())
    encoder.train(was_training)
    return torch.cat(rows)


class ForgettingProbe:
    """Measures a model against a reference (the same model before fine-tuning) on ``texts``.

    ``labels`` (any hashable values, at least two texts each) name a second task the reference
    can do: nearest-centroid accuracy, each text scored against centroids of the *other* texts
    (leave-one-out), so one embedding pass per model serves both measures. Call the probe on a
    model for a dict with ``probe_accuracy`` and ``embedding_cosine``; ``probe.before`` holds
    the reference's own values.
    """

    def __init__(self, tokenizer, reference: torch.nn.Module, texts: Sequence[str],
                 labels: Sequence):
        if len(texts) != len(labels):
            raise ValueError(f"each text needs one label: {len(texts)} texts, {len(labels)} labels")
        classes = sorted(set(labels))
        self.labels = torch.tensor([classes.index(label) for label in labels])
        counts = torch.bincount(self.labels)
        if len(classes) < 2 or int(counts.min()) < 2:
            raise ValueError("the probe needs two labels or more, each with at least two texts "
                             "(a text is scored against the centroids of the others)")
        self.tokenizer, self.texts = tokenizer, list(texts)
        self.reference = sentence_embeddings(reference, tokenizer, self.texts)
        self.before = self.measure(self.reference)

    def measure(self, embeddings: torch.Tensor) -> dict[str, float]:
        """Both measures for precomputed embeddings of ``texts`` (rows in the same order)."""
        one_hot = torch.nn.functional.one_hot(self.labels).to(embeddings.dtype)
        sums, counts = one_hot.T @ embeddings, one_hot.sum(dim=0)
        # each text's own class loses the text itself: leave-one-out centroids
        own = (sums[self.labels] - embeddings) / (counts[self.labels] - 1)[:, None]
        others = sums / counts[:, None]
        similarity = embeddings @ torch.nn.functional.normalize(others, dim=-1).T
        own_similarity = (embeddings * torch.nn.functional.normalize(own, dim=-1)).sum(dim=1)
        similarity[torch.arange(len(self.labels)), self.labels] = own_similarity
        correct = similarity.argmax(dim=1) == self.labels
        return dict(probe_accuracy=correct.float().mean().item(),
                    embedding_cosine=(embeddings * self.reference).sum(dim=1).mean().item())

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        return self.measure(sentence_embeddings(model, self.tokenizer, self.texts))

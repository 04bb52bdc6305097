"""What a fine-tune costs the model elsewhere: a probe of what MiniLM could do before it.

all-MiniLM-L6-v2 was trained to embed sentences (mean of the last hidden states over the real
tokens, then unit length, as its sentence-transformers configuration says). Fine-tuning its
encoder for another task (a review classifier) moves those embeddings. Two measures, both on
texts the fine-tune never saw:

- ``probe_accuracy``: nearest-centroid accuracy of the embeddings on a second task (the category
  of an instruction): centroids from one split, accuracy on the other. Nothing is trained for
  it, so it reads what the representation still separates.
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
    """Measures a model against the embeddings of a reference model (the one before fine-tuning).

    ``fit_texts``/``fit_labels`` give the centroids, ``test_texts``/``test_labels`` the accuracy;
    labels are any hashable values. Call the probe on a model for a dict with
    ``probe_accuracy`` and ``embedding_cosine``; ``probe.before`` holds the reference's.
    """

    def __init__(self, tokenizer, reference: torch.nn.Module, fit_texts: Sequence[str],
                 fit_labels: Sequence, test_texts: Sequence[str], test_labels: Sequence):
        if len(fit_texts) != len(fit_labels) or len(test_texts) != len(test_labels):
            raise ValueError("each text needs one label")
        classes = sorted(set(fit_labels))
        missing = set(test_labels) - set(classes)
        if missing:
            raise ValueError(f"test labels {sorted(missing)} have no example to fit a centroid")
        self.tokenizer = tokenizer
        self.fit_texts, self.test_texts = list(fit_texts), list(test_texts)
        self.fit_labels = torch.tensor([classes.index(label) for label in fit_labels])
        self.test_labels = torch.tensor([classes.index(label) for label in test_labels])
        self.n_classes = len(classes)
        self.reference_test = sentence_embeddings(reference, tokenizer, self.test_texts)
        self.before = self(reference)

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        fit = sentence_embeddings(model, self.tokenizer, self.fit_texts)
        test = sentence_embeddings(model, self.tokenizer, self.test_texts)
        centroids = torch.stack([fit[self.fit_labels == k].mean(dim=0)
                                 for k in range(self.n_classes)])
        predicted = (test @ torch.nn.functional.normalize(centroids, dim=-1).T).argmax(dim=1)
        return dict(probe_accuracy=(predicted == self.test_labels).float().mean().item(),
                    embedding_cosine=(test * self.reference_test).sum(dim=1).mean().item())

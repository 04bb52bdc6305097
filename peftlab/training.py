"""A plain training loop for sequence classification, with a progress bar and a timer."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm as text_tqdm
from tqdm.auto import tqdm as auto_tqdm

# tqdm's monitor thread wakes every 10 s and redraws stalled bars from outside the main thread; in a
# Jupyter kernel that means widget messages sent concurrently with the cell's own output. Not needed.
text_tqdm.monitor_interval = 0


def progress_bar(total: int, desc: str, unit: str = "step", disable: bool = False):
    """A progress bar: a widget in Jupyter, text in a terminal.

    ``PEFTLAB_PROGRESS=text`` forces a text bar (``make book`` sets it: a static page cannot show a
    widget, and the text goes to stderr, which the book leaves out).
    """
    bar = text_tqdm if os.environ.get("PEFTLAB_PROGRESS") == "text" else auto_tqdm
    return bar(total=total, desc=desc, unit=unit, disable=disable)


@dataclass
class TrainingReport:
    """What a fine-tune did: loss per step and the seconds it took."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def tokenize_batches(tokenizer, texts: list[str], labels: list[int], batch_size: int, max_length: int = 64):
    """Split texts and labels into tokenized batches (dicts of tensors with ``labels``)."""
    batches = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        batch["labels"] = torch.tensor(labels[start : start + batch_size])
        batches.append(batch)
    return batches


@torch.no_grad()
def accuracy(model: torch.nn.Module, batches) -> float:
    """Share of examples whose argmax logit equals the label."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for batch in batches:
        inputs = {key: value for key, value in batch.items() if key != "labels"}
        predictions = model(**inputs).logits.argmax(dim=-1)
        correct += (predictions == batch["labels"]).sum().item()
        total += len(batch["labels"])
    model.train(was_training)
    return correct / total


def _adamw(parameters: list, lr: float) -> torch.optim.Optimizer:
    """AdamW, fused where torch has a fused kernel for these parameters.

    The fused kernel updates every tensor in one pass: on a 2-core CPU it made the optimizer step
    of MiniLM's full fine-tune (22.7M parameters) about ten times faster than the per-tensor loop.
    Same algorithm, same hyperparameters; the results differ only by rounding.
    """
    try:
        return torch.optim.AdamW(parameters, lr=lr, fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without a fused kernel
        return torch.optim.AdamW(parameters, lr=lr)


def train(model: torch.nn.Module, batches, epochs: int = 1, lr: float = 1e-3, seed: int = 0,
          show_progress: bool = True) -> TrainingReport:
    """Train the parameters that require gradients with AdamW; show a progress bar; time it.

    ``show_progress=False`` hides the bar (for a caller that shows its own).
    """
    torch.manual_seed(seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("The model has no trainable parameters: nothing to train.")
    optimizer = _adamw(trainable, lr)
    report = TrainingReport()
    model.train()
    start = time.perf_counter()
    with progress_bar(epochs * len(batches), "training", disable=not show_progress) as bar:
        for _ in range(epochs):
            for batch in batches:
                loss = model(**batch).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                report.losses.append(loss.item())
                bar.set_postfix(loss=f"{loss.item():.3f}")
                bar.update()
    report.seconds = time.perf_counter() - start
    model.eval()
    return report

"""Fine-tuning methods compared on one task: same data, same steps, several seeds.

``compare_methods`` fine-tunes one sequence classifier with each method (full fine-tuning,
LoRA, DoRA, QLoRA, prompt tuning, prefix tuning) and measures each run the same way;
``summary_table`` and ``plot_comparison`` show the mean over seeds beside the spread. The
model loader, the data and the number of steps are parameters: the book runs MiniLM on a
CPU, the capstone a larger model on a GPU.
"""

from __future__ import annotations

import functools
import gc
import tempfile
import textwrap
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from peft import (LoraConfig, PeftConfig, PeftModel, PrefixTuningConfig,
                  PromptTuningConfig, get_peft_model, prepare_model_for_kbit_training)
from transformers import BitsAndBytesConfig

from .models import load_minilm_classifier
from .training import accuracy, progress_bar, train

# Names of a classification head: BERT calls it `classifier`, Llama-like models `score`.
# peft's SEQ_CLS task type trains (and saves) these modules; 4-bit loading must leave them
# unquantised.
HEAD_MODULE_NAMES = ["classifier", "score"]

# What the memory column holds on each kind of device.
CUDA_PEAK = "peak CUDA memory (torch.cuda.max_memory_allocated)"
COUNTED_STATE = "weights + gradients + AdamW states (counted from the tensors)"


@dataclass(frozen=True)
class Method:
    """One fine-tuning method: how to wrap the model, at which rate, on which base.

    ``adapter`` builds a fresh peft configuration for each run (peft edits the
    configuration it is given); ``None`` means full fine-tuning. ``quantize`` loads the
    base in NF4 (QLoRA).
    """

    name: str
    learning_rate: float
    adapter: Callable[[], PeftConfig] | None = None
    quantize: bool = False


# Learning rates per method (AdamW, constant). LoRA, DoRA and QLoRA keep the rate of their
# chapters; the others were picked from two or three candidates each in a short trial on
# MiniLM (10 steps of 16 reviews, 2 seeds) scored on 100 training reviews left out of the
# budget, never on the test set. Prompt and prefix tuning need rates far above full
# fine-tuning's, as Lester et al. report.
LEARNING_RATES = {
    "full fine-tuning": 2e-4,
    "LoRA": 5e-3,
    "DoRA": 5e-3,
    "QLoRA": 5e-3,
    "prompt tuning": 1e-1,
    "prefix tuning": 3e-2,
}


def nf4_config(compute_dtype: torch.dtype = torch.float32) -> BitsAndBytesConfig:
    """QLoRA's quantisation: NF4, double quantisation; the task head stays out."""
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
        llm_int8_skip_modules=HEAD_MODULE_NAMES,  # a 4-bit head could not be trained
    )


def default_methods(target_modules: Sequence[str] = ("query", "value"), rank: int = 8,
                    virtual_tokens: int = 10,
                    learning_rates: dict[str, float] | None = None) -> list[Method]:
    """The six methods of the comparison, in the order the table shows them.

    LoRA, DoRA and QLoRA share one LoRA configuration (``rank``, alpha = 2 * rank, on
    ``target_modules``); prompt and prefix tuning use ``virtual_tokens`` virtual tokens.
    Every peft configuration has task type SEQ_CLS, so the classification head is trained
    too. ``learning_rates`` overrides entries of ``LEARNING_RATES``.
    """
    rates = {**LEARNING_RATES, **(learning_rates or {})}
    lora = functools.partial(LoraConfig, task_type="SEQ_CLS", r=rank, lora_alpha=2 * rank,
                             target_modules=list(target_modules))
    return [
        Method("full fine-tuning", rates["full fine-tuning"]),
        Method("LoRA", rates["LoRA"], lora),
        Method("DoRA", rates["DoRA"], functools.partial(lora, use_dora=True)),
        Method("QLoRA", rates["QLoRA"], lora, quantize=True),
        Method("prompt tuning", rates["prompt tuning"], functools.partial(
            PromptTuningConfig, task_type="SEQ_CLS", num_virtual_tokens=virtual_tokens)),
        Method("prefix tuning", rates["prefix tuning"], functools.partial(
            PrefixTuningConfig, task_type="SEQ_CLS", num_virtual_tokens=virtual_tokens)),
    ]


def trainable_parameters(model: torch.nn.Module) -> int:
    """Number of parameters that receive gradients (the head included when trained).

    Counted by the libraries: peft's ``get_nb_trainable_parameters`` for a peft model (it
    includes prompt encoders), transformers' ``num_parameters`` otherwise. Counting them
    yourself is an exercise of chapter 4.
    """
    if isinstance(model, PeftModel):
        return model.get_nb_trainable_parameters()[0]
    return model.num_parameters(only_trainable=True)


def _quant_state_tensors(model: torch.nn.Module) -> list[torch.Tensor]:
    """The NF4 constants of every 4-bit weight (absmax, code, offset; nested ones too).

    They live in each weight's ``quant_state``, which is neither a parameter nor a buffer.
    """
    tensors = []
    for parameter in model.parameters():
        state = getattr(parameter, "quant_state", None)
        while state is not None:
            constants = (state.absmax, state.code, state.offset)
            tensors += [t for t in constants if t is not None]
            state = state.state2
    return tensors


def training_state_bytes(model: torch.nn.Module) -> int:
    """Bytes of what training keeps besides activations, counted from the model's tensors.

    Every parameter, buffer and NF4 constant, plus, for each trainable tensor, a gradient
    and AdamW's two moments of its size and dtype and AdamW's step counter (a float32
    scalar). Activations are not counted: on a CPU no allocator reports a peak.
    """
    tensors = {t.data_ptr(): t for t in [*model.parameters(), *model.buffers(),
                                         *_quant_state_tensors(model)]}
    stored = sum(t.numel() * t.element_size() for t in tensors.values())
    trainable = [p for p in model.parameters() if p.requires_grad]
    per_trainable = sum(3 * p.numel() * p.element_size() + 4 for p in trainable)
    return stored + per_trainable


def saved_bytes(model: torch.nn.Module) -> int:
    """Bytes that ``save_pretrained`` writes: a peft model's adapter, else the model."""
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        files = [path for path in Path(folder).rglob("*") if path.is_file()]
        return sum(path.stat().st_size for path in files)


def _fine_tune(method: Method, seed: int, train_batches, load_model, device: torch.device,
               compute_dtype: torch.dtype, epochs: int):
    """Load, wrap and train one model; return it with its training report."""
    if method.quantize:
        model = load_model(seed=seed, quantization_config=nf4_config(compute_dtype))
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    else:
        model = load_model(seed=seed).to(device)
    if method.adapter is not None:
        torch.manual_seed(seed)  # the adapter's initial values
        model = get_peft_model(model, method.adapter())
    with warnings.catch_warnings():  # prompt learning extends token_type_ids and says so
        warnings.simplefilter("ignore")
        report = train(model, train_batches, epochs=epochs, lr=method.learning_rate,
                       seed=seed, show_progress=False)
    return model, report


def compare_methods(train_batches: list, test_batches: list,
                    methods: Sequence[Method] | None = None,
                    seeds: Sequence[int] = (0, 1, 2), epochs: int = 1,
                    load_model: Callable[..., torch.nn.Module] = load_minilm_classifier,
                    compute_dtype: torch.dtype = torch.float32,
                    evaluate: Callable[[torch.nn.Module], dict] | None = None) -> pd.DataFrame:
    """Fine-tune with every method and seed on the same batches; a row per method, seed.

    ``train_batches`` and ``test_batches`` come from ``training.tokenize_batches``; the
    budget is ``epochs`` passes over ``train_batches``, the same for every method.
    ``load_model(seed=..., quantization_config=...)`` returns a fresh sequence classifier
    (``quantization_config`` only for QLoRA; the loader places a quantised model itself,
    other models are moved to the batches' device). ``compute_dtype`` is NF4's compute
    dtype (float32 on a CPU; bfloat16 or float16 on a GPU).

    Columns: method, seed, learning_rate, steps; accuracy on ``test_batches`` after
    training; train_seconds (the training loop only); memory_bytes and memory_measure (on
    CUDA the peak allocated from loading to the end of training, on a CPU
    ``training_state_bytes``); trainable_parameters; saved_bytes (what ``save_pretrained``
    writes). ``evaluate(model)``, if given, is called on each trained model and its dict's
    entries become more columns (e.g. a ``forgetting.ForgettingProbe``).
    """
    methods = list(methods if methods is not None else default_methods())
    device = train_batches[0]["input_ids"].device
    on_cuda = device.type == "cuda"
    rows = []
    with progress_bar(len(methods) * len(seeds), "methods x seeds", unit="run") as bar:
        for method in methods:
            for seed in seeds:
                bar.set_postfix(method=method.name, seed=seed)
                if on_cuda:
                    gc.collect()
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(device)
                model, report = _fine_tune(method, seed, train_batches, load_model,
                                           device, compute_dtype, epochs)
                memory = (torch.cuda.max_memory_allocated(device) if on_cuda
                          else training_state_bytes(model))
                rows.append(dict(
                    method=method.name, seed=seed, learning_rate=method.learning_rate,
                    steps=len(report.losses), accuracy=accuracy(model, test_batches),
                    train_seconds=report.seconds, memory_bytes=memory,
                    memory_measure=CUDA_PEAK if on_cuda else COUNTED_STATE,
                    trainable_parameters=trainable_parameters(model),
                    saved_bytes=saved_bytes(model),
                    **(evaluate(model) if evaluate is not None else {})))
                del model
                bar.update()
    return pd.DataFrame(rows)


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per method, in the order of ``results``: mean or median, and range over seeds.

    Accuracy gets mean, min and max; training seconds median, min and max (a timing is
    reported as a median of repeats with its range); memory, trainable parameters and saved
    size do not depend on the seed (their mean is shown, in MB where a size).
    """
    grouped = results.groupby("method", sort=False)
    table = pd.DataFrame({
        "seeds": grouped["seed"].count(),
        "steps": grouped["steps"].first(),
        "lr": grouped["learning_rate"].first(),
        "accuracy": grouped["accuracy"].mean(),
        "acc min": grouped["accuracy"].min(),
        "acc max": grouped["accuracy"].max(),
        "median s": grouped["train_seconds"].median(),
        "s min": grouped["train_seconds"].min(),
        "s max": grouped["train_seconds"].max(),
        "memory MB": grouped["memory_bytes"].mean() / 1e6,
        "trainable": grouped["trainable_parameters"].mean().round().astype(int),
        "saved MB": grouped["saved_bytes"].mean() / 1e6,
    })
    table.index.name = None
    return table


def plot_comparison(results: pd.DataFrame, baseline: float | None = None):
    """Bar charts of the mean over seeds (the median for time), error bars from min to max,
    one dot per seed.

    Panels: accuracy (with ``baseline``, e.g. the majority-class share, as a dashed line),
    training seconds, memory (as ``memory_measure`` says), trainable parameters and saved
    size (both on a log scale). Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    panels = [  # column, divisor, title, unit, log scale
        ("accuracy", 1, "held-out accuracy", "share correct", False),
        ("train_seconds", 1, "training time", "seconds", False),
        ("memory_bytes", 1e6, "memory", "MB", False),
        ("trainable_parameters", 1, "trainable parameters", "count", True),
        ("saved_bytes", 1e6, "saved by save_pretrained", "MB", True),
    ]
    names = list(dict.fromkeys(results["method"]))
    positions = range(len(names))
    fig, axes = plt.subplots(2, 3, figsize=(12, 7))
    for ax, (column, scale, title, unit, log) in zip(axes.flat, panels):
        values = [results.loc[results["method"] == name, column] / scale
                  for name in names]
        means = [v.median() if column == "train_seconds" else v.mean() for v in values]
        # Clipped at 0: the mean of equal values can exceed their max by a rounding error.
        spread = [[max(m - v.min(), 0) for m, v in zip(means, values)],
                  [max(v.max() - m, 0) for m, v in zip(means, values)]]
        ax.bar(positions, means, yerr=spread, capsize=4,
               color=[f"C{i}" for i in positions])
        for position, v in zip(positions, values):
            ax.plot([position] * len(v), v, "k.", markersize=4)
        ax.set_xticks(list(positions), names, rotation=35, ha="right")
        ax.set_title(title)
        ax.set_ylabel(unit + (", log scale" if log else ""))
        if log:
            ax.set_yscale("log")
    if baseline is not None:
        axes.flat[0].axhline(baseline, color="k", linestyle="--", linewidth=1,
                             label="majority class")
        axes.flat[0].legend(fontsize=8, loc="lower right")
    measure = textwrap.fill(results["memory_measure"].iloc[0], 38)
    axes.flat[-1].axis("off")
    axes.flat[-1].text(0, 0.5, f"bars: mean over {results['seed'].nunique()} seeds "
                       "(time: median)\n"
                       f"error bars: min to max\ndots: single seeds\n\nmemory: {measure}",
                       va="center")
    fig.tight_layout()
    return fig

"""The capstone's plumbing: hardware profiles, the model and data each loads, training with measurement.

What the capstone asks students to write (choosing a profile, formatting examples, the QLoRA
configuration, scoring labels, predicting memory) is not here; this module holds what runs around it:
loading the base model in 4 bit, the instruction data with its category labels, a training loop that
measures time, tokens and peak memory, and the adapter's round trip through the disk.

Two profiles share one code path:

- ``GPU_PROFILE``: Qwen2.5-0.5B-Instruct (Apache-2.0) in NF4 with double quantisation, fine-tuned on
  databricks-dolly-15k (CC BY-SA 3.0) to name the category of an instruction; needs the internet once.
- ``CPU_PROFILE``: the real MiniLM (shipped on PyPI) used as a causal language model, in NF4 through
  bitsandbytes' CPU code, on the course's shipped ``instructions`` set (Dolly's eight categories); offline.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .data import load_course_dataset
from .environment import offline
from .training import progress_bar

QWEN_INSTRUCT = "Qwen/Qwen2.5-0.5B-Instruct"
DOLLY = "databricks/databricks-dolly-15k"
MINILM = "minilm"
CONTEXT_CHARACTERS = 400  # a Dolly context is cut to this many characters in the prompt


@dataclass(frozen=True)
class Profile:
    """Everything a capstone run takes from the hardware it found."""

    name: str  # "gpu" or "cpu"
    device: str  # "cuda" or "cpu"
    model_id: str  # a Hugging Face Hub id, or "minilm" for the shipped MiniLM
    dataset: str  # a Hub id, or a folder of the course's data/
    compute_dtype: torch.dtype  # what 4-bit layers dequantise to and compute in
    batch_size: int
    max_length: int  # tokens per example, prompt and answer together
    train_examples: int
    test_examples: int
    steps: int
    learning_rate: float
    lora_r: int
    lora_alpha: int
    lora_dropout: float = 0.05
    skip_modules: tuple[str, ...] = ()  # modules kept out of 4 bit (e.g. newly initialised layers)
    reason: str = ""  # why this profile was chosen, in words


GPU_PROFILE = Profile(
    name="gpu", device="cuda", model_id=QWEN_INSTRUCT, dataset=DOLLY, compute_dtype=torch.bfloat16,
    batch_size=8, max_length=256, train_examples=2000, test_examples=400, steps=250,
    learning_rate=2e-4, lora_r=16, lora_alpha=32,
)
CPU_PROFILE = Profile(
    name="cpu", device="cpu", model_id=MINILM, dataset="instructions", compute_dtype=torch.float32,
    batch_size=8, max_length=96, train_examples=400, test_examples=48, steps=50,
    learning_rate=1e-3, lora_r=8, lora_alpha=16, skip_modules=("cls",),
)


def show_profile(profile: Profile, hardware: dict) -> None:
    """Print the hardware found and the profile chosen, as a small table."""
    rows = {"hardware": hardware.get("name", "?"), "device": hardware.get("device", "?")}
    if hardware.get("device") == "cuda":
        rows["GPU memory (GiB)"] = hardware.get("memory_gib", "?")
        rows["compute capability"] = ".".join(map(str, hardware.get("compute_capability", ())))
        rows["native bf16"] = hardware.get("bf16", "?")
    rows.update({
        "profile": profile.name, "model": profile.model_id, "data": profile.dataset,
        "compute dtype": str(profile.compute_dtype).replace("torch.", ""),
        "batch size": profile.batch_size, "max length": profile.max_length,
        "steps": profile.steps, "LoRA r / alpha": f"{profile.lora_r} / {profile.lora_alpha}",
    })
    width = max(len(key) for key in rows)
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")
    if profile.reason:
        print(f"\nwhy: {profile.reason}")


# ---------------------------------------------------------------------------------------------
# Data: an instruction and its context in, the category's name out.


def category_prompt(example: dict) -> str:
    """The prompt for one instruction; the answer that follows it is " " + its category."""
    text = f"Instruction: {example['instruction'].strip()}\n"
    context = (example.get("context") or "").strip()
    if context:
        text += f"Context: {context[:CONTEXT_CHARACTERS]}\n"
    return text + "Category:"


def load_category_data(profile: Profile, seed: int = 0) -> tuple[list[dict], list[dict], list[str]]:
    """(train examples, held-out examples, sorted category names) for ``profile``.

    Dolly has one split: a seeded shuffle sets ``test_examples`` aside first, then takes
    ``train_examples`` for training. The shipped set has its own train and test files.
    """
    data = load_course_dataset(profile.dataset)
    if "test" in data:
        train, test = list(data["train"]), list(data["test"])
    else:
        rows = list(data["train"].shuffle(seed=seed))
        test, train = rows[: profile.test_examples], rows[profile.test_examples :]
    train, test = train[: profile.train_examples], test[: profile.test_examples]
    categories = sorted({row["category"] for row in train})
    return train, test, categories


# ---------------------------------------------------------------------------------------------
# Models


def load_tokenizer(profile: Profile):
    """The profile's tokenizer, with the ids the capstone needs: ``eos_id`` and ``pad_id``."""
    from transformers import AutoTokenizer

    from .models import minilm_dir

    source = minilm_dir() if profile.model_id == MINILM else profile.model_id
    tokenizer = AutoTokenizer.from_pretrained(source)
    # BERT's tokenizer has no end-of-sequence token: its [SEP] ends a sequence.
    tokenizer.eos_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    tokenizer.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_id
    return tokenizer


def load_base_model(profile: Profile, quantization_config=None, seed: int = 0):
    """The profile's causal LM: in 4 bit when ``quantization_config`` is given, else in its compute dtype.

    MiniLM was pretrained as a bidirectional encoder; loaded with ``is_decoder=True`` it attends only
    to earlier tokens, as a causal LM must. Its language-model head is partly new: the output matrix is
    the pretrained word-embedding table (tied), but the transform before it and the output bias are not
    in the checkpoint and start untrained (seeded, so that every load builds the same ones). Raises a clear error when the GPU profile's model
    is not on this machine and the Hub is off limits.
    """
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    from .models import minilm_dir

    torch.manual_seed(seed)
    kwargs = {"dtype": profile.compute_dtype}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if profile.device == "cuda":  # MiniLM too (`make gpu-check` runs the CPU profile on a GPU)
        kwargs["device_map"] = {"": 0}
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # "newly initialised weights" is expected for MiniLM's head
    try:
        if profile.model_id == MINILM:
            model = AutoModelForCausalLM.from_pretrained(minilm_dir(), is_decoder=True, **kwargs)
        else:
            model = AutoModelForCausalLM.from_pretrained(profile.model_id, **kwargs)
    except OSError as error:
        hint = " (HF_HUB_OFFLINE is set)" if offline() else ""
        raise RuntimeError(
            f"Could not load {profile.model_id!r}{hint}: the GPU profile downloads it once from the "
            f"Hugging Face Hub. Without internet, run the CPU profile (CPU_PROFILE). Cause: {error}"
        ) from None
    finally:
        logging.set_verbosity(verbosity)
    _train_through_cpu_4bit(model)
    return model


def _train_through_cpu_4bit(model: torch.nn.Module) -> None:
    """Keep bitsandbytes' CPU 4-bit layers trainable after an evaluation pass.

    bitsandbytes 0.50 repacks a 4-bit weight for its AVX512-BF16 inference kernel the first time the
    layer runs in eval mode on such a CPU, and afterwards takes that inference-only path even in
    training, which fails in backward. The capstone evaluates before it trains, so it opts out.
    """
    try:
        import bitsandbytes as bnb
    except ImportError:  # pragma: no cover - the lock installs it
        return
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def meta_base_model(profile: Profile) -> torch.nn.Module:
    """The profile's base model on the ``meta`` device, unquantised: every shape, no memory.

    Non-quantised parameters have the dtype the loaded model gives them (the compute dtype).
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    from .models import minilm_dir

    if profile.model_id == MINILM:
        config = AutoConfig.from_pretrained(minilm_dir(), is_decoder=True)
    else:
        config = AutoConfig.from_pretrained(profile.model_id)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, dtype=profile.compute_dtype)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (where its inputs must go)."""
    return next(model.parameters()).device


# ---------------------------------------------------------------------------------------------
# Training with measurement


@dataclass
class RunReport:
    """What a capstone fine-tune measured."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    tokens: int = 0  # non-padding tokens that went through forward and backward
    peak_memory_bytes: int = 0
    memory_measured: str = ""  # what ``peak_memory_bytes`` is, in words

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


@contextlib.contextmanager
def peak_memory(device: str):
    """Measure peak memory over a block; yields a dict filled in with ``bytes`` and ``what``.

    CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak (tensors only, not the CUDA
    context or the allocator's cache). CPU: the process's peak resident set size so far
    (``ru_maxrss``), which cannot be reset: it includes Python, the libraries and earlier cells.
    """
    result: dict = {}
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    yield result
    if device == "cuda":
        torch.cuda.synchronize()
        result["bytes"] = torch.cuda.max_memory_allocated()
        result["what"] = "torch.cuda.max_memory_allocated (tensors on the GPU)"
    else:
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        result["bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
        result["what"] = "peak resident memory of this process so far (Python, libraries, every cell)"


def train_with_measurement(model: torch.nn.Module, batches: list[dict], profile: Profile,
                           seed: int = 0) -> RunReport:
    """AdamW on the trainable parameters for ``profile.steps`` steps, cycling through ``batches``.

    Shows a progress bar with the loss; returns losses, seconds, tokens and peak memory.
    """
    if not batches:
        raise ValueError("No training batches: was the training set empty?")
    torch.manual_seed(seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("The model has no trainable parameters: attach LoRA first.")
    optimizer = torch.optim.AdamW(trainable, lr=profile.learning_rate)
    target = model_device(model)
    # fp16 activations (a T4) can underflow in backward: scale the loss, unscale before the step.
    scaler = torch.amp.GradScaler(target.type, enabled=profile.compute_dtype == torch.float16)
    report = RunReport()
    model.train()
    with peak_memory(profile.device) as memory, progress_bar(profile.steps, "fine-tuning") as bar:
        start = time.perf_counter()
        for step in range(profile.steps):
            batch = {key: value.to(target) for key, value in batches[step % len(batches)].items()}
            loss = model(**batch).loss
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            report.losses.append(loss.item())
            report.tokens += int(batch["attention_mask"].sum())
            bar.set_postfix(loss=f"{report.losses[-1]:.3f}")
            bar.update()
        if profile.device == "cuda":
            torch.cuda.synchronize()
        report.seconds = time.perf_counter() - start
    report.peak_memory_bytes, report.memory_measured = memory["bytes"], memory["what"]
    model.eval()
    return report


def folder_bytes(folder: str | Path) -> int:
    """Total size of the files in ``folder`` (e.g. a saved adapter)."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


def adapter_round_trip(peft_model, profile: Profile, input_ids: torch.Tensor,
                       folder: str | Path | None = None) -> dict:
    """Save the adapter, reload it onto a fresh unquantised base, merge it, and compare outputs.

    Returns the adapter's size on disk and the largest logit differences: merged vs unmerged on
    the fresh base (only rounding), and fresh unquantised base + adapter vs the 4-bit model it was
    trained on (the quantisation error of the base). Without ``folder`` the adapter goes to a
    temporary folder that is removed before returning (nothing is left in /tmp).
    """
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="capstone-adapter-") as scratch:
            trip = adapter_round_trip(peft_model, profile, input_ids, folder=scratch)
        return {**trip, "adapter folder": "(temporary, removed)"}
    from peft import PeftModel

    folder = Path(folder)
    peft_model.save_pretrained(folder)
    device = model_device(peft_model)
    input_ids = input_ids.to(device)
    with torch.no_grad():
        trained = peft_model(input_ids=input_ids).logits.float()
        fresh = PeftModel.from_pretrained(load_base_model(profile), folder).eval()
        unmerged = fresh(input_ids=input_ids.to(model_device(fresh))).logits.float()
        merged_model = fresh.merge_and_unload()
        merged = merged_model(input_ids=input_ids.to(model_device(merged_model))).logits.float()
    return {
        "adapter folder": str(folder),
        "adapter bytes on disk": folder_bytes(folder),
        "max |merged - unmerged|": (merged - unmerged).abs().max().item(),
        "max |unquantised base + adapter - 4-bit base + adapter|": (unmerged - trained.to(unmerged.device))
        .abs().max().item(),
    }

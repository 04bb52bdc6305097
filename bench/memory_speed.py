"""Peak memory and training speed of full fine-tuning, LoRA and QLoRA, beside the
prediction.

    python -m bench.memory_speed [--models M ...] [--methods full lora qlora]
                                 [--batch B] [--seq S] [--steps N] [--json PATH]

Each (model, method) trains in its own fresh subprocess, so that peaks do not mix: a
model built from its config with random weights (memory and speed do not depend on the
weights' values; nothing is downloaded), a few warm-up steps, then N timed steps of
forward + backward + AdamW on random token ids. Methods, same batch and sequence length:

- ``full``: every weight trains, in the run's dtype (bfloat16 on CUDA, float32 on CPU).
  A 16-bit run keeps float32 master weights and float32 AdamW moments (mixed precision:
  2 + 2 + 4 + 8 bytes per parameter); a float32 run trains in place (4 + 4 + 8).
- ``lora``: the base frozen in the run's dtype; LoRA r=16, alpha=32 on every linear
  layer but the output layer (peft's ``target_modules="all-linear"``), adapters float32.
- ``qlora``: every linear layer of the decoder blocks in NF4 with double quantisation
  (bitsandbytes ``Linear4bit``), the rest in the run's dtype; LoRA as above on top.

The prediction beside each is the course's accounting (chapters 1 and 6): weights +
gradients + AdamW states, counted from the parameters of the model objects. A trainable
parameter costs 16 bytes (weight, gradient, float32 moments, and a float32 master copy
when it is 16-bit); a frozen one its storage; an NF4 weight 0.5 + 1/64 + 4/(64*256)
bytes. Activations are not predicted: the table shows measured - predicted as
"activations and workspace". In full fine-tuning the gradients fill in while backward
frees the activations: the two never peak together, and that difference understates the
activations.

Measured peak: on CUDA ``torch.cuda.max_memory_allocated()`` over the warm-up and timed
steps (reset once the model is built: the weights are in it, the building is not) minus
the memory allocated before the model was built; on CPU the child's peak resident set
size (``getrusage`` ``ru_maxrss``, its high-water mark reset once the model is built,
through Linux's ``/proc/self/clear_refs``) minus its resident size just before the model
was built. Before either, one step of a one-block model of the same kind loads the code
that a step needs. The CPU run checks the measuring code, not speed.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

MODELS = ("tiny", "qwen2.5-0.5b", "llama-2-7b")
LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes")
METHODS = ("full", "lora", "qlora")
DTYPES = ("auto", "float32", "bfloat16", "float16")
LORA_RANK, LORA_ALPHA = 16, 32
# Chapter 6: 4-bit codes, an 8-bit absmax per 64 weights, a float32 one per 256 absmax.
NF4_DOUBLE_QUANT_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)
# Chapter 1: AdamW keeps two float32 moments per trainable parameter.
ADAM_MOMENT_BYTES = 8
FLOAT32_BYTES = 4
GIB = 2**30
LARGE_GPU_GIB = 40  # llama-2-7b joins the default models on a GPU with at least this much
ROOT = Path(__file__).resolve().parents[1]
# On the CPU, glibc keeps freed blocks in its heap and the resident set stays at its
# high-water mark: measured so, the tiny model's resting set grew by 140 MB in four steps.
# Blocks of 64 KiB and more, mapped on their own, leave the resident set once freed.
CPU_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "65536"}

# The CPU test's model: a Llama large enough for the methods' memory to differ by MBs.
TINY_LLAMA = dict(vocab_size=4096, hidden_size=256, intermediate_size=1024,
                  num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=4,
                  max_position_embeddings=512, tie_word_embeddings=False)
# config.json of Qwen/Qwen2.5-0.5B-Instruct (494,032,768 parameters, embeddings tied).
QWEN2_5_0_5B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                    num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                    tie_word_embeddings=True, max_position_embeddings=32768,
                    rms_norm_eps=1e-6, rope_theta=1e6)


def model_config(name: str, layers: int | None = None):
    """The transformers configuration of a benchmark model (one of ``MODELS``).

    ``layers`` keeps only the first decoder blocks (the priming run uses one).
    """
    from transformers import LlamaConfig, Qwen2Config

    from peftlab.models import llama2_config

    configs = {"tiny": lambda: LlamaConfig(**TINY_LLAMA),
               "qwen2.5-0.5b": lambda: Qwen2Config(**QWEN2_5_0_5B),
               "llama-2-7b": lambda: llama2_config("7B")}
    if name not in configs:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    config = configs[name]()
    if layers is not None:
        config.num_hidden_layers = layers
        if getattr(config, "layer_types", None):
            config.layer_types = config.layer_types[:layers]
    return config


# ------------------------------------------------------------------------ building models

def quantize_block_linears(model, device) -> int:
    """Replace each ``nn.Linear`` of the decoder blocks by an NF4 double-quantised one.

    bitsandbytes ``Linear4bit``, computing in the weights' dtype. The output layer stays
    as it is, as transformers' bitsandbytes integration leaves it. Layers are quantised
    one at a time, so only one full-precision weight is ever duplicated. Returns how many
    were.
    """
    import bitsandbytes as bnb
    import torch

    replaced = 0
    for block in model.model.layers:
        for parent in list(block.modules()):
            for name, linear in list(parent.named_children()):
                if type(linear) is not torch.nn.Linear:
                    continue
                quantized = bnb.nn.Linear4bit(
                    linear.in_features, linear.out_features, bias=linear.bias is not None,
                    compute_dtype=linear.weight.dtype, compress_statistics=True,
                    quant_type="nf4", device="meta")
                quantized.weight = bnb.nn.Params4bit(
                    linear.weight.data, requires_grad=False, compress_statistics=True,
                    quant_type="nf4")
                if linear.bias is not None:
                    quantized.bias = torch.nn.Parameter(linear.bias.data,
                                                        requires_grad=False)
                setattr(parent, name, quantized.to(device))  # .to() quantises
                replaced += 1
    model.is_loaded_in_4bit = True  # peft then wraps them in its bitsandbytes LoRA layer
    return replaced


def build_model(name: str, method: str, device: str, dtype, layers: int | None = None):
    """The model ``name`` ready to train with ``method``, in ``dtype`` on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(model_config(name, layers), dtype=dtype)
    if method == "full":
        return model.train()
    from peft import LoraConfig, get_peft_model

    model.requires_grad_(False)
    if method == "qlora":
        quantize_block_linears(model, device)
    lora = LoraConfig(r=LORA_RANK, lora_alpha=LORA_ALPHA, target_modules="all-linear")
    return get_peft_model(model, lora).train()  # peft keeps the adapters in float32


# ----------------------------------------------------------------------------- prediction

def quantized_elements(parameter) -> int:
    """Weights a 4-bit parameter stands for (packed two to a byte), else 0."""
    quant_state = getattr(parameter, "quant_state", None)
    if quant_state is None:
        return 0
    count = 1
    for size in quant_state.shape:
        count *= size
    return count


def trainable_bytes_per_parameter(element_size: int) -> int:
    """Weight + gradient + float32 AdamW moments (+ float32 master of a 16-bit one)."""
    master = FLOAT32_BYTES if element_size < FLOAT32_BYTES else 0
    return 2 * element_size + ADAM_MOMENT_BYTES + master


def predicted_bytes(model) -> dict[str, float]:
    """The course's memory prediction for training ``model``: weights, gradients, AdamW.

    Counted from the model's parameters (shared ones once): trainable parameters at
    ``trainable_bytes_per_parameter``, frozen ones at their storage, NF4 ones at
    ``NF4_DOUBLE_QUANT_BYTES`` per weight. Activations are not predicted.
    """
    weights = gradients = optimizer = 0.0
    for parameter in model.parameters():
        size, quantized = parameter.element_size(), quantized_elements(parameter)
        if parameter.requires_grad:
            weights += parameter.numel() * size
            gradients += parameter.numel() * size
            states = trainable_bytes_per_parameter(size) - 2 * size
            optimizer += parameter.numel() * states
        elif quantized:
            weights += quantized * NF4_DOUBLE_QUANT_BYTES
        else:
            weights += parameter.numel() * size
    return {"weights": weights, "gradients": gradients, "optimizer": optimizer,
            "total": weights + gradients + optimizer}


def parameter_counts(model) -> dict[str, int]:
    """Trainable and total parameters (a 4-bit weight counts as what it stands for)."""
    total = trainable = 0
    for parameter in model.parameters():
        count = quantized_elements(parameter) or parameter.numel()
        total += count
        trainable += count if parameter.requires_grad else 0
    return {"trainable": trainable, "total": total}


# ------------------------------------------------------------------------------- training

class MixedPrecisionAdamW:
    """AdamW on float32 master copies of 16-bit weights (chapter 1's 2 + 2 + 4 + 8 bytes).

    The model computes in 16 bit. A step takes the parameters in buckets of at most
    ``bucket_elements``: it converts the bucket's gradients to float32, updates its
    master copies and moments, and copies them back into the 16-bit weights. A float32
    gradient of the whole model never exists: one bucket's at most (256 MiB by default),
    or the largest parameter's (a large vocabulary's embedding) when that is larger.
    """

    def __init__(self, parameters, lr: float, bucket_elements: int = 2**26) -> None:
        import torch

        self.buckets: list[tuple[list, list, torch.optim.AdamW]] = []
        bucket: list = []
        for parameter in parameters:
            filled = sum(p.numel() for p in bucket)
            if bucket and filled + parameter.numel() > bucket_elements:
                self._add_bucket(bucket, lr)
                bucket = []
            bucket.append(parameter)
        if bucket:
            self._add_bucket(bucket, lr)

    def _add_bucket(self, weights: list, lr: float) -> None:
        """Float32 master copies of ``weights`` and an AdamW that updates them."""
        import torch

        masters = [w.detach().to(torch.float32, copy=True) for w in weights]
        self.buckets.append((weights, masters, torch.optim.AdamW(masters, lr=lr)))

    def step(self) -> None:
        """Update the master weights from the 16-bit gradients and copy them back."""
        import torch

        with torch.no_grad():
            for weights, masters, adamw in self.buckets:
                for weight, master in zip(weights, masters):
                    master.grad = None if weight.grad is None else weight.grad.float()
                adamw.step()
                for weight, master in zip(weights, masters):
                    master.grad = None
                    weight.copy_(master)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the 16-bit gradients."""
        for weights, _, _ in self.buckets:
            for weight in weights:
                weight.grad = None


def make_optimizer(model, lr: float = 1e-5):
    """AdamW on the trainable parameters: in place if float32, on masters if 16-bit."""
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    if all(p.dtype == torch.float32 for p in trainable):
        return torch.optim.AdamW(trainable, lr=lr)
    return MixedPrecisionAdamW(trainable, lr=lr)


def train_steps(model, optimizer, token_ids, steps: int) -> float:
    """Run ``steps`` steps of forward + backward + optimizer step; return wall seconds."""
    import torch

    def synchronize():
        if token_ids.device.type == "cuda":
            torch.cuda.synchronize()

    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        loss = model(input_ids=token_ids, labels=token_ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    synchronize()
    return time.perf_counter() - start


# ----------------------------------------------------------------------- measuring memory

def resident_bytes() -> int:
    """This process's resident set size now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def release_free_heap() -> None:
    """Hand the C heap's free memory back to the system (glibc ``malloc_trim``)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of one training run in this process, on CUDA or on the CPU.

    ``start()`` before the model is built, ``reset()`` once it is, ``peak()`` after
    training: the peak since ``reset()`` minus what was in use at ``start()``.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.baseline = 0
        self.scope = ""

    def start(self) -> None:
        """Remember what is in use before the model exists."""
        import torch

        if self.device == "cuda":
            self.baseline = torch.cuda.memory_allocated()
        else:
            release_free_heap()
            self.baseline = resident_bytes()

    def reset(self) -> None:
        """Restart the peak from what is in use now (the built model)."""
        import torch

        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.scope = ("torch.cuda.max_memory_allocated() during the warm-up and "
                          "timed steps, minus the memory allocated before the model was "
                          "built")
            return
        release_free_heap()  # what building the model freed
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
            during = "during the warm-up and timed steps"
        except OSError:
            during = "over the whole child, building the model included"
        self.scope = (f"peak resident set size (getrusage ru_maxrss) {during}, minus the "
                      "resident size just before the model was built (glibc "
                      f"{' '.join(f'{k}={v}' for k, v in CPU_MALLOC.items())})")

    def peak(self) -> int:
        """Peak bytes since ``reset()``, less the baseline of ``start()``."""
        import torch

        if self.device == "cuda":
            return torch.cuda.max_memory_allocated() - self.baseline
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.baseline


# ------------------------------------------------------------------------ one measurement

@dataclass
class Measurement:
    """One row of the table: a (model, method) pair trained in its own process."""

    model: str
    method: str
    device: str
    dtype: str
    batch: int
    seq: int
    steps: int
    trainable_params: int = 0
    total_params: int = 0
    predicted: dict[str, float] = field(default_factory=dict)
    measured_bytes: int = 0
    seconds: float = 0.0
    tokens_per_s: float = 0.0
    measured: str = ""
    error: str = ""


def prime(row: Measurement, dtype, token_ids) -> None:
    """One step of a one-block model of the same kind, before anything is measured.

    The first step loads code (shared libraries, kernels) and initialises libraries once
    per process; on the CPU those pages are resident memory. Priming keeps them out.
    """
    import gc

    import torch

    model = build_model(row.model, row.method, row.device, dtype, layers=1)
    train_steps(model, make_optimizer(model), token_ids, steps=1)
    del model
    gc.collect()
    if row.device == "cuda":
        torch.cuda.empty_cache()


def measure(row: Measurement, warmup: int) -> Measurement:
    """Build, warm up and time one (model, method); fill in ``row``'s results."""
    import torch

    dtype = getattr(torch, row.dtype)
    generator = torch.Generator().manual_seed(0)
    vocab = model_config(row.model).vocab_size
    token_ids = torch.randint(vocab, (row.batch, row.seq), generator=generator)
    token_ids = token_ids.to(row.device)
    prime(row, dtype, token_ids)
    memory = PeakMemory(row.device)
    memory.start()
    model = build_model(row.model, row.method, row.device, dtype)
    optimizer = make_optimizer(model)
    counts = parameter_counts(model)
    row.trainable_params, row.total_params = counts["trainable"], counts["total"]
    row.predicted = predicted_bytes(model)
    memory.reset()
    train_steps(model, optimizer, token_ids, warmup)
    row.seconds = train_steps(model, optimizer, token_ids, row.steps)
    row.measured_bytes = memory.peak()
    row.measured = memory.scope
    row.tokens_per_s = row.batch * row.seq * row.steps / row.seconds
    return row


def child_main(request_path: Path) -> int:
    """In a child: measure the row of ``request_path``; write ``result.json`` beside."""
    request = json.loads(request_path.read_text())
    row = Measurement(**request["row"])
    try:
        measure(row, request["warmup"])
    except Exception as error:  # an OOM or any failure becomes the row's error
        lines = str(error).strip().splitlines()
        row.error = f"{type(error).__name__}: {lines[0] if lines else ''}"
    (request_path.parent / "result.json").write_text(json.dumps(asdict(row)))
    return 1 if row.error else 0


def run_in_child(row: Measurement, warmup: int) -> Measurement:
    """Measure ``row`` in a fresh Python process, so that its peak is its own."""
    with tempfile.TemporaryDirectory() as folder:
        request, result = Path(folder) / "request.json", Path(folder) / "result.json"
        request.write_text(json.dumps({"row": asdict(row), "warmup": warmup}))
        environment = {**os.environ, **(CPU_MALLOC if row.device == "cpu" else {})}
        done = subprocess.run([sys.executable, "-m", "bench.memory_speed", "--child",
                               str(request)], cwd=ROOT, env=environment,
                              capture_output=True, text=True)
        if result.exists():
            return Measurement(**json.loads(result.read_text()))
    last_lines = done.stderr.strip().splitlines()[-2:]
    row.error = " | ".join(last_lines) or f"the child ended with status {done.returncode}"
    return row


# ----------------------------------------------------------------------------- the report

def format_table(rows: list[Measurement]) -> str:
    """The results as a fixed-width table, memory in GiB (MiB when all is below 1 GiB)."""
    largest = max([r.measured_bytes for r in rows]
                  + [r.predicted.get("total", 0) for r in rows])
    unit, scale = ("GiB", GIB) if largest >= GIB else ("MiB", 2**20)
    header = (f"{'model':<13} {'method':<6} {'batch':>5} {'seq':>5} {'trainable':>13} "
              f"{'predicted':>10} {'measured':>10} {'act.+work':>10} {'ratio':>6} "
              f"{'tokens/s':>9}")
    lines = [f"memory in {unit}; predicted = weights + gradients + AdamW states; "
             "act.+work = measured - predicted (activations and workspace)", header,
             "-" * len(header)]
    for r in rows:
        start = f"{r.model:<13} {r.method:<6} {r.batch:>5} {r.seq:>5} "
        if r.error:
            lines.append(start + f"FAILED: {r.error}")
            continue
        predicted = r.predicted["total"]
        lines.append(start + f"{r.trainable_params:>13,} {predicted / scale:>10.3f} "
                     f"{r.measured_bytes / scale:>10.3f} "
                     f"{(r.measured_bytes - predicted) / scale:>10.3f} "
                     f"{r.measured_bytes / predicted:>6.2f} "
                     f"{format_speed(r.tokens_per_s):>9}")
    lines += qlora_lora_ratios(rows)
    return "\n".join(lines)


def format_speed(tokens_per_s: float) -> str:
    """Tokens per second: a whole number, or 3 significant digits below 100."""
    return f"{tokens_per_s:,.0f}" if tokens_per_s >= 100 else f"{tokens_per_s:.3g}"


def qlora_lora_ratios(rows: list[Measurement]) -> list[str]:
    """One line per model that has both a LoRA and a QLoRA row: their memory ratio."""
    lines = []
    for model in dict.fromkeys(r.model for r in rows):
        found = {r.method: r for r in rows if r.model == model and not r.error}
        if "lora" in found and "qlora" in found:
            lora, qlora = found["lora"], found["qlora"]
            lines.append(
                f"{model}: QLoRA/LoRA memory ratio measured "
                f"{qlora.measured_bytes / lora.measured_bytes:.2f}, predicted "
                f"{qlora.predicted['total'] / lora.predicted['total']:.2f} (weights "
                f"only: {qlora.predicted['weights'] / lora.predicted['weights']:.2f})")
    return lines


def describe_run(device: str, dtype: str) -> dict[str, object]:
    """What the run ran on: device, weights' dtype, library versions and the date."""
    import torch

    from peftlab.environment import library_versions

    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        name = f"{props.name} ({props.total_memory / GIB:.1f} GiB)"
    else:
        name = f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"device": name, "dtype": dtype, "date": now.strftime("%Y-%m-%d %H:%M UTC"),
            "versions": library_versions(LIBRARIES)}


# --------------------------------------------------------------------------- command line

def parser() -> argparse.ArgumentParser:
    """The command line (validated before anything heavy is imported)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory_speed", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=MODELS, metavar="MODEL",
                        help=f"models to measure ({', '.join(MODELS)}); default: on "
                        "CUDA qwen2.5-0.5b, and llama-2-7b when the GPU has >= "
                        f"{LARGE_GPU_GIB} GiB; on CPU tiny")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        metavar="METHOD",
                        help=f"methods ({', '.join(METHODS)}; default: all)")
    parser.add_argument("--batch", type=at_least(1),
                        help="sequences per step (default 4)")
    parser.add_argument("--seq", type=at_least(1),
                        help="tokens per sequence (default: 512 on CUDA, 128 on CPU)")
    parser.add_argument("--steps", type=at_least(1),
                        help="timed steps (default: 10 on CUDA, 3 on CPU)")
    parser.add_argument("--warmup", type=at_least(0),
                        help="untimed steps first (default: 3 on CUDA, 1 on CPU)")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument("--dtype", choices=DTYPES, default="auto",
                        help="weights' dtype (default: bfloat16 on CUDA, float16 on a "
                        "GPU without bfloat16, float32 on CPU)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the rows here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    return parser


def at_least(minimum: int):
    """An argparse type: an integer no smaller than ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # argparse names the type in its messages
    return parse


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child:  # the result is written: skip the interpreter's seconds-long teardown
        status = child_main(args.child)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        parser().error("--device cuda: this machine has no CUDA GPU")
    on_cuda = device == "cuda"
    dtype = args.dtype
    if dtype == "auto":
        dtype = "float32" if not on_cuda else (
            "bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    models = args.models
    if models is None:
        gpu_gib = torch.cuda.get_device_properties(0).total_memory / GIB if on_cuda else 0
        models = ["qwen2.5-0.5b"] + (["llama-2-7b"] if gpu_gib >= LARGE_GPU_GIB else [])
        models = models if on_cuda else ["tiny"]
    batch = args.batch or 4
    seq = args.seq or (512 if on_cuda else 128)
    steps = args.steps or (10 if on_cuda else 3)
    warmup = args.warmup if args.warmup is not None else (3 if on_cuda else 1)

    run = describe_run(device, dtype)
    print(f"device: {run['device']}; weights in {dtype}; {run['date']}")
    versions = ", ".join(f"{name} {version}" for name, version in run["versions"].items())
    print(f"versions: {versions}", flush=True)
    rows = []
    plan = [(model, method) for model in models for method in args.methods]
    for index, (model, method) in enumerate(plan, start=1):
        started = time.perf_counter()
        request = Measurement(model, method, device, dtype, batch, seq, steps)
        row = run_in_child(request, warmup)
        rows.append(row)
        outcome = (f"FAILED: {row.error}" if row.error else
                   f"peak {row.measured_bytes / GIB:.3f} GiB, "
                   f"{format_speed(row.tokens_per_s)} tokens/s")
        print(f"[{index}/{len(plan)}] {model} {method}: {outcome} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    print()
    print(format_table(rows))
    print(f"measured: {next((r.measured for r in rows if r.measured), 'nothing')}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        run["rows"] = [asdict(r) for r in rows]
        args.json.write_text(json.dumps(run, indent=1) + "\n")
    failed = [r for r in rows if r.error]
    if failed:
        print(f"error: {len(failed)} of {len(rows)} measurements failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The course's GPU path proved on one CUDA machine, offline, in one table (`make gpu-check`).

    python -m bench.gpu_check [--json PATH] [--cpu]

Three parts, nothing downloaded (random weights from configurations, the shipped MiniLM and data;
``HF_HUB_OFFLINE=1`` is forced):

1. Memory (``bench/memory_speed.py``, each row in a fresh process): ``qwen2.5-0.5b`` (full, LoRA,
   QLoRA) and, on a GPU of at least 40 GiB, ``llama-2-7b`` (LoRA, QLoRA), in bfloat16 and float16:
   the course's prediction beside ``torch.cuda.max_memory_allocated``, and the QLoRA/LoRA ratio.
2. The capstone's training loop (``peftlab.capstone``) on CUDA with the CPU profile's shipped
   MiniLM in NF4: float16 compute with a GradScaler (the T4 path), then bfloat16 (the Ampere path).
   Each: the loss goes down, the adapter is saved, reloaded onto a fresh unquantised base, merged,
   and the outputs compared.
3. A mixed-adapter batch (chapter 9): one forward with ``adapter_names`` against each adapter
   run on its own.

Without a CUDA device it says so and exits with status 2. ``--cpu`` runs the same parts, smaller,
on the CPU (the tiny benchmark model, a short capstone run in float32): a dry run of the code,
labelled "CPU: not a GPU proof".
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # everything this check needs is on the machine
os.environ["HF_DATASETS_OFFLINE"] = "1"

GIB = 2**30
BUDGET_S = 8 * 60  # the whole check on one GPU
LARGE_GPU_GIB = 40  # llama-2-7b's LoRA rows need its 13.5 GB of 16-bit weights and more
NOT_A_GPU_PROOF = "CPU: not a GPU proof"
NO_CUDA = ("no CUDA device found: `make gpu-check` proves the course's GPU path and needs an "
           "NVIDIA GPU that torch can use (torch {torch}: {build}). "
           "`make gpu-check CPU=1` runs the same code on the CPU as a dry run ("
           + NOT_A_GPU_PROOF + ").")


@dataclass
class Check:
    """One row of the table."""

    part: str  # "memory", "capstone", "adapters"
    name: str
    setting: str
    result: str
    ok: bool
    seconds: float = 0.0


# ------------------------------------------------------------------------------- 1. memory

def memory_plan(on_cuda: bool, gpu_gib: float) -> list[tuple[str, str, str]]:
    """(model, method, dtype) of each memory row."""
    if not on_cuda:
        return [("tiny", method, "float32") for method in ("full", "lora", "qlora")]
    plan = []
    for dtype in ("bfloat16", "float16"):
        plan += [("qwen2.5-0.5b", method, dtype) for method in ("full", "lora", "qlora")]
        if gpu_gib >= LARGE_GPU_GIB:
            plan += [("llama-2-7b", method, dtype) for method in ("lora", "qlora")]
    return plan


def memory_check(row, wall: float = 0.0) -> Check:
    """A benchmark row (``bench.memory_speed.Measurement``) as a check.

    The prediction counts weights, gradients and AdamW states, not activations: a measured peak
    below 90 % of it means the accounting (or the measurement) is wrong.
    """
    from bench.memory_speed import format_speed

    name = f"{row.model} {row.method}"
    setting = f"{row.dtype}, batch {row.batch} x {row.seq} tokens, {row.steps} steps"
    if row.error:
        return Check("memory", name, setting, f"FAILED: {row.error}", False, wall)
    predicted = row.predicted["total"]
    unit, scale = ("GiB", GIB) if max(predicted, row.measured_bytes) >= GIB else ("MiB", 2**20)
    result = (f"predicted {predicted / scale:.3f} {unit}, measured {row.measured_bytes / scale:.3f}"
              f" {unit} (x{row.measured_bytes / predicted:.2f}), "
              f"{format_speed(row.tokens_per_s)} tokens/s")
    return Check("memory", name, setting, result, row.measured_bytes >= 0.9 * predicted, wall)


def ratio_checks(rows) -> list[Check]:
    """QLoRA/LoRA memory, measured and predicted, for each (model, dtype) that has both."""
    checks = []
    for model, dtype in dict.fromkeys((r.model, r.dtype) for r in rows):
        found = {r.method: r for r in rows
                 if (r.model, r.dtype) == (model, dtype) and not r.error}
        if "lora" not in found or "qlora" not in found:
            continue
        lora, qlora = found["lora"], found["qlora"]
        measured = qlora.measured_bytes / lora.measured_bytes
        predicted = qlora.predicted["total"] / lora.predicted["total"]
        checks.append(Check("memory", f"{model} QLoRA/LoRA", dtype,
                            f"measured {measured:.2f}, predicted {predicted:.2f}",
                            measured < 1))
    return checks


def run_memory(device: str, plan, batch: int, seq: int, steps: int, warmup: int):
    """Measure each planned row in its own process; return (row, wall seconds) pairs."""
    from bench.memory_speed import Measurement, run_in_child

    rows = []
    for index, (model, method, dtype) in enumerate(plan, start=1):
        started = time.perf_counter()
        row = run_in_child(Measurement(model, method, device, dtype, batch, seq, steps), warmup)
        wall = time.perf_counter() - started  # the row's process, building included
        rows.append((row, wall))
        print(f"[memory {index}/{len(plan)}] {model} {method} {dtype}: "
              f"{'FAILED ' + row.error if row.error else 'done'} ({wall:.0f} s)", flush=True)
    return rows


# ----------------------------------------------------------------------------- 2. capstone

def encode(tokenizer, row: dict, max_length: int) -> dict[str, list[int]]:
    """One training example: prompt (labels -100), then " " + category and the end token."""
    from peftlab.capstone import category_prompt

    prompt = tokenizer(category_prompt(row), add_special_tokens=False)["input_ids"]
    answer = tokenizer(" " + row["category"], add_special_tokens=False)["input_ids"]
    answer = answer + [tokenizer.eos_id]
    prompt = prompt[max(0, len(prompt) + len(answer) - max_length):]
    return {"input_ids": prompt + answer, "attention_mask": [1] * (len(prompt) + len(answer)),
            "labels": [-100] * len(prompt) + answer}


def pad(examples: list[dict], pad_id: int) -> dict:
    """Right-padded tensors of a list of examples."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    fill = {"input_ids": pad_id, "attention_mask": 0, "labels": -100}
    return {key: torch.tensor([e[key] + [value] * (width - len(e[key])) for e in examples])
            for key, value in fill.items()}


def loss_went_down(losses: list[float]) -> tuple[bool, float, float]:
    """(finite and the last fifth's mean below the first fifth's, first mean, last mean)."""
    window = max(1, len(losses) // 5)
    first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window
    return all(math.isfinite(x) for x in losses) and last < first, first, last


def merge_tolerance(dtype_name: str) -> float:
    """Largest |merged - unmerged| logit accepted: rounding of the merged weights only."""
    return 1e-3 if dtype_name == "float32" else 0.25


def run_capstone(path: str, dtype_name: str, device: str, steps: int | None = None,
                 examples: int | None = None) -> list[Check]:
    """The capstone's QLoRA fine-tune of the CPU profile's MiniLM on ``device`` in ``dtype``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig

    from peftlab import capstone
    from peftlab.environment import quiet_libraries

    quiet_libraries()
    dtype = getattr(torch, dtype_name)
    profile = dataclasses.replace(capstone.CPU_PROFILE, device=device, compute_dtype=dtype)
    if steps:
        profile = dataclasses.replace(profile, steps=steps)
    if examples:
        profile = dataclasses.replace(profile, train_examples=examples)
    setting = (f"{profile.model_id} NF4, {dtype_name} compute"
               + (" + GradScaler" if dtype == torch.float16 else "") + f", {profile.steps} steps")
    started = time.perf_counter()
    try:
        quantization = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype, llm_int8_skip_modules=list(profile.skip_modules))
        lora = LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha,
                          lora_dropout=profile.lora_dropout, target_modules="all-linear",
                          task_type="CAUSAL_LM")
        tokenizer = capstone.load_tokenizer(profile)
        base = capstone.load_base_model(profile, quantization)
        placed = capstone.model_device(base).type
        train_rows, test_rows, _ = capstone.load_category_data(profile)
        encoded = [encode(tokenizer, row, profile.max_length) for row in train_rows]
        batches = [pad(encoded[i:i + profile.batch_size], tokenizer.pad_id)
                   for i in range(0, len(encoded), profile.batch_size)]
        model = get_peft_model(base, lora)
        report = capstone.train_with_measurement(model, batches, profile)
    except Exception as error:  # a failure is the row's result, the other rows still run
        return [Check("capstone", f"{path}: training", setting,
                      f"FAILED: {type(error).__name__}: {str(error)[:160]}", False,
                      time.perf_counter() - started)]
    down, first, last = loss_went_down(report.losses)
    memory = report.peak_memory_bytes / 2**20
    checks = [Check("capstone", f"{path}: training", setting,
                    f"loss {first:.3f} -> {last:.3f} (first/last fifth), model on {placed}, "
                    f"{report.tokens_per_second:,.0f} tokens/s, peak {memory:.0f} MiB",
                    down and placed == device, time.perf_counter() - started)]
    started = time.perf_counter()
    sample = pad([encode(tokenizer, row, profile.max_length) for row in test_rows[:4]],
                 tokenizer.pad_id)["input_ids"]
    try:
        trip = capstone.adapter_round_trip(model, profile, sample)
    except Exception as error:
        checks.append(Check("capstone", f"{path}: adapter round trip", "save, reload, merge",
                            f"FAILED: {type(error).__name__}: {str(error)[:160]}", False,
                            time.perf_counter() - started))
        return checks
    size = trip["adapter bytes on disk"]
    merged = trip["max |merged - unmerged|"]
    quantised = trip["max |unquantised base + adapter - 4-bit base + adapter|"]
    tolerance = merge_tolerance(dtype_name)
    checks.append(Check(
        "capstone", f"{path}: adapter round trip", "save, reload on an unquantised base, merge",
        f"{size / 2**20:.2f} MiB on disk; max |merged - unmerged| {merged:.3g} "
        f"(<= {tolerance:g}); max |unquantised - 4-bit base| {quantised:.3g}",
        size > 0 and merged <= tolerance and math.isfinite(quantised),
        time.perf_counter() - started))
    return checks


# ------------------------------------------------------------------------- 3. many adapters

def run_mixed_adapters(device: str, adapters: int = 4, rows: int = 8) -> Check:
    """One batch whose rows each use another adapter, against each adapter on its own."""
    import torch
    from peft import LoraConfig, get_peft_model

    from peftlab.data import load_course_dataset
    from peftlab.models import load_minilm_classifier, load_minilm_tokenizer

    started = time.perf_counter()
    setting = f"MiniLM + {adapters} LoRA adapters, {rows} rows in one batch"
    try:
        def config():
            return LoraConfig(target_modules=["query", "value"], r=8, init_lora_weights=False)

        torch.manual_seed(0)
        model = get_peft_model(load_minilm_classifier(seed=0), config(), adapter_name="a0")
        for index in range(1, adapters):
            model.add_adapter(f"a{index}", config())
        model = model.to(device).eval()
        texts = load_course_dataset("reviews")["test"]["text"][:rows]
        inputs = load_minilm_tokenizer()(texts, padding=True, truncation=True, max_length=48,
                                         return_tensors="pt").to(device)
        names = [f"a{i % adapters}" for i in range(rows)]
        with torch.no_grad():
            mixed = model(**inputs, adapter_names=names).logits
            alone = torch.empty_like(mixed)
            for index in range(adapters):
                model.set_adapter(f"a{index}")
                alone[index::adapters] = model(**inputs).logits[index::adapters]
            differ = (model(**inputs).logits - mixed).abs().max().item()  # adapters do differ
        gap = (mixed - alone).abs().max().item()
    except Exception as error:
        return Check("adapters", "mixed-adapter batch", setting,
                     f"FAILED: {type(error).__name__}: {str(error)[:160]}", False,
                     time.perf_counter() - started)
    return Check("adapters", "mixed-adapter batch", setting,
                 f"max |mixed - one adapter at a time| {gap:.3g} (<= 1e-3); the adapters' "
                 f"outputs differ by up to {differ:.3g}", gap <= 1e-3 and differ > 1e-3,
                 time.perf_counter() - started)


# ------------------------------------------------------------------------------- the table

def format_table(checks: list[Check], header: list[str]) -> str:
    """Every check in one fixed-width table, with a header of what ran where."""
    widths = [max(len(c.name) for c in checks), max(len(c.setting) for c in checks)]
    title = (f"{'part':<8}  {'check':<{widths[0]}}  {'setting':<{widths[1]}}  "
             f"{'s':>4}  ok    result")
    lines = [*header, title, "-" * len(title)]
    for c in checks:
        lines.append(f"{c.part:<8}  {c.name:<{widths[0]}}  {c.setting:<{widths[1]}}  "
                     f"{c.seconds:>4.0f}  {'yes' if c.ok else 'NO ':<4}  {c.result}")
    failed = sum(not c.ok for c in checks)
    lines.append(f"{len(checks) - failed} of {len(checks)} checks passed")
    return "\n".join(lines)


def describe_machine(device: str) -> list[str]:
    """The lines above the table: the device, driver, CUDA, library versions, date."""
    import torch

    from peftlab.environment import library_versions

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        try:
            driver = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            driver = "unknown"
        where = (f"{props.name}, {props.total_memory / GIB:.1f} GiB, compute capability "
                 f"{props.major}.{props.minor}; driver {driver}; CUDA {torch.version.cuda}")
    else:
        where = f"{NOT_A_GPU_PROOF}: {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    versions = ", ".join(f"{k} {v}" for k, v in library_versions().items())
    return [f"gpu-check on {where}; {now}", f"versions: {versions}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true",
                        help=f"a dry run on the CPU, smaller ({NOT_A_GPU_PROOF})")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the checks here")
    args = parser.parse_args(argv)
    import torch

    if not args.cpu and not torch.cuda.is_available():
        build = (f"built for CUDA {torch.version.cuda}, but no device is visible"
                 if torch.version.cuda else "a CPU-only build")
        print(NO_CUDA.format(torch=torch.__version__, build=build), file=sys.stderr)
        return 2
    device = "cpu" if args.cpu else "cuda"
    on_cuda = device == "cuda"
    start = time.perf_counter()
    header = describe_machine(device)
    print("\n".join(header), flush=True)
    gpu_gib = torch.cuda.get_device_properties(0).total_memory / GIB if on_cuda else 0.0
    plan = memory_plan(on_cuda, gpu_gib)
    if on_cuda:
        rows = run_memory(device, plan, batch=4, seq=512, steps=3, warmup=1)
    else:
        rows = run_memory(device, plan, batch=2, seq=32, steps=1, warmup=1)
    checks = [memory_check(row, wall) for row, wall in rows]
    checks += ratio_checks([row for row, _ in rows])
    if on_cuda and gpu_gib < LARGE_GPU_GIB:
        checks.append(Check("memory", "llama-2-7b", "LoRA and QLoRA", f"skipped: the GPU has "
                            f"{gpu_gib:.1f} GiB, fewer than {LARGE_GPU_GIB}", True))
    if on_cuda:
        paths = [("T4 path", "float16", None, None), ("Ampere path", "bfloat16", None, None)]
    else:
        paths = [("CPU dry run", "float32", 8, 64)]
    for path, dtype, steps, examples in paths:
        checks += run_capstone(path, dtype, device, steps, examples)
        print(f"[capstone] {path} done", flush=True)
    checks.append(run_mixed_adapters(device))
    elapsed = time.perf_counter() - start
    print()
    print(format_table(checks, header))
    within = "within" if elapsed <= BUDGET_S else "OVER"
    print(f"{elapsed:.0f} s in all ({within} the {BUDGET_S // 60} minutes of the check)"
          + ("" if on_cuda else f"; {NOT_A_GPU_PROOF}"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"header": header, "seconds": elapsed,
                                         "checks": [asdict(c) for c in checks]}, indent=1))
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

"""`make gpu-check` on a machine without a GPU: what can run here.

The refusal without CUDA, the table and its verdicts from made-up rows, and the capstone and
mixed-adapter parts themselves on the CPU (short). The GPU figures are the check's own job, on a
CUDA machine.
"""

import os
import subprocess
import sys

import pytest

from autograder.course import ROOT, tool_environment
from bench import gpu_check
from bench.memory_speed import Measurement


def row(method: str, measured: float, predicted: float, error: str = "", model="qwen2.5-0.5b",
        dtype="bfloat16") -> Measurement:
    return Measurement(model, method, "cuda", dtype, 4, 512, 3,
                       predicted={"total": predicted, "weights": predicted / 2},
                       measured_bytes=int(measured), tokens_per_s=1234.0, error=error)


def test_without_cuda_it_says_so_and_fails():
    environment = {**tool_environment(), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-m", "bench.gpu_check"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no CUDA device found" in done.stderr and "CPU=1" in done.stderr
    assert done.stdout == ""


def test_memory_plan_covers_both_architectures_in_both_16_bit_dtypes():
    large = gpu_check.memory_plan(True, 79.2)
    for dtype in ("bfloat16", "float16"):
        assert {m for m, _, d in large if d == dtype} == {"qwen2.5-0.5b", "llama-2-7b"}
        assert {(m, x) for m, x, d in large if d == dtype} >= {
            ("qwen2.5-0.5b", "lora"), ("qwen2.5-0.5b", "qlora"), ("llama-2-7b", "lora"),
            ("llama-2-7b", "qlora")}
    assert all(m != "llama-2-7b" for m, _, _ in gpu_check.memory_plan(True, 14.7))  # a T4
    assert {d for _, _, d in gpu_check.memory_plan(False, 0)} == {"float32"}


def test_memory_rows_and_ratios_become_checks():
    gib = 2**30
    good, short = row("lora", 2.5 * gib, 2 * gib), row("lora", 1 * gib, 2 * gib)
    assert gpu_check.memory_check(good).ok
    assert not gpu_check.memory_check(short).ok  # measured below the prediction: wrong
    failed = gpu_check.memory_check(row("full", 0, 1, error="OutOfMemoryError: CUDA"))
    assert not failed.ok and failed.result.startswith("FAILED: OutOfMemoryError")
    ratios = gpu_check.ratio_checks([good, row("qlora", 1.25 * gib, 0.8 * gib)])
    assert len(ratios) == 1 and ratios[0].ok
    assert ratios[0].result == "measured 0.50, predicted 0.40"
    inverted = gpu_check.ratio_checks([good, row("qlora", 3 * gib, 0.8 * gib)])
    assert not inverted[0].ok


def test_one_table_with_every_check_and_the_count():
    checks = [gpu_check.Check("memory", "qwen2.5-0.5b lora", "bfloat16", "predicted ...", True, 12),
              gpu_check.Check("capstone", "T4 path: training", "fp16", "FAILED: x", False, 30)]
    table = gpu_check.format_table(checks, ["gpu-check on X", "versions: y"])
    lines = table.splitlines()
    assert lines[:2] == ["gpu-check on X", "versions: y"]
    assert len(lines) == 2 + 2 + len(checks) + 1
    assert " NO " in lines[5] and " yes " in lines[4]
    assert lines[-1] == "1 of 2 checks passed"


def test_loss_verdict_and_example_encoding():
    assert gpu_check.loss_went_down([3, 3, 2, 1, 0.5])[0]
    assert not gpu_check.loss_went_down([1, 1, 1, 1, 2])[0]
    assert not gpu_check.loss_went_down([3, float("nan"), 1, 1, 0.5])[0]

    class Tokenizer:
        eos_id = 2

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [len(word) for word in text.split()]}

    example = gpu_check.encode(Tokenizer(), {"instruction": "a bb ccc dddd " * 5,
                                             "category": "open_qa"}, max_length=6)
    assert len(example["input_ids"]) == 6
    assert example["input_ids"][-2:] == [7, 2] and example["labels"][-2:] == [7, 2]
    assert example["labels"][:-2] == [-100] * 4
    batch = gpu_check.pad([example, {"input_ids": [5], "attention_mask": [1], "labels": [5]}], 0)
    assert batch["labels"][1].tolist() == [5] + [-100] * 5
    assert batch["attention_mask"][1].tolist() == [1] + [0] * 5


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_capstone_path_runs_on_the_cpu_and_round_trips_the_adapter(offline):
    checks = gpu_check.run_capstone("CPU dry run", "float32", "cpu", steps=6, examples=48)
    assert [c.name for c in checks] == ["CPU dry run: training", "CPU dry run: adapter round trip"]
    assert all(c.ok for c in checks), [c.result for c in checks]
    assert "model on cpu" in checks[0].result


def test_mixed_adapter_batch_matches_each_adapter_alone(offline):
    check = gpu_check.run_mixed_adapters("cpu")
    assert check.ok, check.result


def test_make_gpu_check_is_documented():
    readme = (ROOT / "README.md").read_text()
    assert "make gpu-check" in readme
    assert "make gpu-check" in (ROOT / "book" / "instructors.md").read_text()
    assert "gpu-check:" in (ROOT / "Makefile").read_text()
    assert os.path.exists(ROOT / "bench" / "gpu_check.py")

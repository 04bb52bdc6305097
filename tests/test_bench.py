"""`make bench`'s measuring code, on the CPU: the real entry point on the tiny model.

The CPU run checks that memory and speed are measured and that the predictions are the
course's accounting; its figures say nothing about speed on a GPU.
"""

import ast
import dataclasses
import json
import subprocess
import sys

import pytest

from autograder.course import ROOT, tool_environment
from bench.memory_speed import TINY_LLAMA

LORA_RANK = 16
NF4_DOUBLE_QUANT_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # chapter 6's formula
FLOAT32_TRAINING_BYTES = 4 + 4 + 8  # weight, gradient, AdamW's m and v (chapter 1)


def run_bench(*arguments: str) -> subprocess.CompletedProcess:
    """``python -m bench.memory_speed`` with ``arguments``, as `make bench` runs it."""
    command = [sys.executable, "-m", "bench.memory_speed", *arguments]
    return subprocess.run(command, cwd=ROOT, env=tool_environment(), capture_output=True,
                          text=True, timeout=300)


def tiny_counts() -> dict[str, int]:
    """Parameters of the tiny Llama counted from its shapes (not from a model object)."""
    hidden, inner = TINY_LLAMA["hidden_size"], TINY_LLAMA["intermediate_size"]
    head_dim = hidden // TINY_LLAMA["num_attention_heads"]
    key_value = TINY_LLAMA["num_key_value_heads"] * head_dim
    layers, vocab = TINY_LLAMA["num_hidden_layers"], TINY_LLAMA["vocab_size"]
    # (in, out) of q, k, v, o, gate, up, down
    shapes = [(hidden, hidden), (hidden, key_value), (hidden, key_value),
              (hidden, hidden), (hidden, inner), (hidden, inner), (inner, hidden)]
    linear = layers * sum(n_in * n_out for n_in, n_out in shapes)
    lora = layers * sum(LORA_RANK * (n_in + n_out) for n_in, n_out in shapes)
    norms = layers * 2 * hidden + hidden
    embeddings = vocab * hidden * (1 if TINY_LLAMA["tie_word_embeddings"] else 2)
    return {"all": linear + norms + embeddings, "block_linear": linear, "lora": lora}


@pytest.fixture(scope="module")
def bench_rows(tmp_path_factory):
    """One CPU run of every method on the tiny model: (finished process, rows)."""
    rows_path = tmp_path_factory.mktemp("bench") / "rows.json"
    done = run_bench("--models", "tiny", "--batch", "2", "--seq", "32", "--steps", "1",
                     "--warmup", "1", "--json", str(rows_path))
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads(rows_path.read_text())["rows"]


def test_every_method_is_measured(bench_rows):
    done, rows = bench_rows
    assert [row["method"] for row in rows] == ["full", "lora", "qlora"]
    for row in rows:
        assert not row["error"], row
        assert row["measured_bytes"] > 0, f"{row['method']}: no memory measured"
        assert row["tokens_per_s"] > 0, f"{row['method']}: no speed measured"
        assert "ru_maxrss" in row["measured"], "the CPU run must say it measured the RSS"
    for word in ("predicted", "measured", "tokens/s", "QLoRA/LoRA memory ratio",
                 "activations and workspace", "torch", "bitsandbytes"):
        assert word in done.stdout, f"the printed report lacks {word!r}:\n{done.stdout}"


def test_predictions_are_the_course_accounting(bench_rows):
    _, rows = bench_rows
    counts = tiny_counts()
    frozen_rest = counts["all"] - counts["block_linear"]
    expected = {
        "full": (FLOAT32_TRAINING_BYTES * counts["all"], counts["all"]),
        "lora": (4 * counts["all"] + FLOAT32_TRAINING_BYTES * counts["lora"],
                 counts["lora"]),
        "qlora": (4 * frozen_rest + NF4_DOUBLE_QUANT_BYTES * counts["block_linear"]
                  + FLOAT32_TRAINING_BYTES * counts["lora"], counts["lora"]),
    }
    for row in rows:
        predicted_total, trainable = expected[row["method"]]
        assert row["trainable_params"] == trainable, row["method"]
        assert row["predicted"]["total"] == pytest.approx(predicted_total, rel=1e-12), \
            row["method"]
    by_method = {row["method"]: row for row in rows}
    qlora_weights = by_method["qlora"]["predicted"]["weights"]
    assert qlora_weights < by_method["lora"]["predicted"]["weights"], \
        "NF4 weights must be predicted smaller than the 32-bit base"


def test_a_bad_argument_fails_clearly():
    done = run_bench("--models", "nosuch")
    assert done.returncode != 0
    assert "invalid choice: 'nosuch'" in done.stderr, done.stderr
    assert "tiny" in done.stderr, "the message should list the models to choose from"


def test_the_benchmark_stays_out_of_the_public_edition():
    """``make public`` copies the paths listed in ``autograder/public.py``: not bench/."""
    source = ast.parse((ROOT / "autograder" / "public.py").read_text())
    public = next(ast.literal_eval(node.value) for node in source.body
                  if isinstance(node, ast.Assign)
                  and getattr(node.targets[0], "id", None) == "PUBLIC")
    assert "README.md" in public and "bench" not in public, \
        "bench/ holds the memory formulas that exercises ask for: keep it unexported"


def test_the_gpu_dtype_path_on_the_cpu():
    """bfloat16 weights, as on a GPU: full fine-tuning on float32 masters, 16-bit base."""
    import torch

    from bench.memory_speed import (MixedPrecisionAdamW, build_model, make_optimizer,
                                    predicted_bytes, train_steps)

    token_ids = torch.randint(TINY_LLAMA["vocab_size"], (1, 8))
    full = build_model("tiny", "full", "cpu", torch.bfloat16, layers=1)
    optimizer = make_optimizer(full)
    assert isinstance(optimizer, MixedPrecisionAdamW)
    before = full.model.layers[0].mlp.up_proj.weight.detach().clone()
    train_steps(full, optimizer, token_ids, steps=1)
    after = full.model.layers[0].mlp.up_proj.weight
    assert after.dtype == torch.bfloat16 and not torch.equal(before, after), \
        "a step must update the 16-bit weights from their float32 masters"
    n_full = sum(p.numel() for p in full.parameters())
    assert predicted_bytes(full)["total"] == (2 + 2 + 4 + 8) * n_full

    qlora = build_model("tiny", "qlora", "cpu", torch.bfloat16, layers=1)
    frozen_16_bit = [p for p in qlora.parameters()
                     if not p.requires_grad and p.dtype == torch.bfloat16]
    adapters = [p for p in qlora.parameters() if p.requires_grad]
    assert frozen_16_bit and all(p.dtype == torch.float32 for p in adapters)
    train_steps(qlora, make_optimizer(qlora), token_ids, steps=1)
    assert all(p.grad is None for p in adapters), "the step ends with zero_grad"


def test_a_failed_measurement_is_a_row_and_fails_the_run(tmp_path, monkeypatch, capsys):
    """A child's exception becomes the error of its row; the run exits 1."""
    from bench import memory_speed
    from bench.memory_speed import Measurement, child_main, main

    request = tmp_path / "request.json"
    failing = Measurement("nosuch", "lora", "cpu", "float32", batch=1, seq=8, steps=1)
    request.write_text(json.dumps({"row": dataclasses.asdict(failing), "warmup": 0}))
    assert child_main(request) == 1
    failed = Measurement(**json.loads((tmp_path / "result.json").read_text()))
    assert failed.error.startswith("ValueError: unknown model 'nosuch'"), failed.error

    monkeypatch.setattr(memory_speed, "run_in_child", lambda row, warmup: failed)
    assert main(["--models", "tiny", "--methods", "lora"]) == 1
    printed = capsys.readouterr()
    assert "FAILED: ValueError: unknown model 'nosuch'" in printed.out, printed.out
    assert "1 of 1 measurements failed" in printed.err

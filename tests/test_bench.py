"""`make bench`'s measuring code, on the CPU: the real entry point on the tiny model.

The CPU run checks that memory and speed are measured and that the predictions are the
course's accounting; its figures say nothing about speed on a GPU.
"""

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
    done = run_bench("--models", "tiny", "--batch", "2", "--seq", "32", "--steps", "2",
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

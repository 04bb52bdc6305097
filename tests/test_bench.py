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


def bench_command(*arguments: str) -> list[str]:
    """``python -m bench.memory_speed`` with ``arguments``, as `make bench` runs it."""
    return [sys.executable, "-m", "bench.memory_speed", *arguments]


def run_bench(*arguments: str) -> subprocess.CompletedProcess:
    """Run the benchmark with ``arguments`` and wait for it."""
    return subprocess.run(bench_command(*arguments), cwd=ROOT, env=tool_environment(),
                          capture_output=True, text=True, timeout=300)


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
def bench_run(tmp_path_factory):
    """One CPU run of every method on the tiny model: (printed output, rows)."""
    rows_path = tmp_path_factory.mktemp("bench") / "rows.json"
    done = run_bench("--models", "tiny", "--batch", "2", "--seq", "32", "--steps", "1",
                     "--warmup", "1", "--json", str(rows_path))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(rows_path.read_text())["rows"]


def test_every_method_is_measured(bench_run):
    printed, rows = bench_run
    assert [row["method"] for row in rows] == ["full", "lora", "qlora"]
    for row in rows:
        assert not row["error"], row
        assert row["measured_bytes"] > 0, f"{row['method']}: no memory measured"
        assert row["tokens_per_s"] > 0, f"{row['method']}: no speed measured"
        assert "ru_maxrss" in row["measured"], "the CPU run must say it measured the RSS"
    for word in ("predicted", "measured", "tokens/s", "QLoRA/LoRA memory ratio",
                 "activations and workspace", "torch", "bitsandbytes", "UTC"):
        assert word in printed, f"the printed report lacks {word!r}:\n{printed}"


def test_predictions_are_the_course_accounting(bench_run):
    _, rows = bench_run
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


def test_16_bit_weights_are_predicted_as_mixed_precision():
    """bfloat16 weights (as on a GPU): 2 + 2 + 4 + 8 bytes if trained, 2 if frozen."""
    import torch

    from bench.memory_speed import predicted_bytes

    layer = torch.nn.Linear(64, 32).to(torch.bfloat16)
    n_params = 64 * 32 + 32
    assert predicted_bytes(layer)["total"] == (2 + 2 + 4 + 8) * n_params
    layer.requires_grad_(False)
    assert predicted_bytes(layer) == {"weights": 2 * n_params, "gradients": 0,
                                      "optimizer": 0, "total": 2 * n_params}


def test_mixed_precision_adamw_updates_16_bit_weights_from_float32_masters():
    """Full fine-tuning's optimizer on a GPU, on a bfloat16 layer."""
    import torch

    from bench.memory_speed import MixedPrecisionAdamW

    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 64).to(torch.bfloat16)
    before = layer.weight.detach().clone()
    optimizer = MixedPrecisionAdamW(layer.parameters(), lr=1e-3, bucket_elements=64 * 64)
    assert len(optimizer.buckets) == 2, "the weight fills one bucket, the bias another"
    layer(torch.randn(8, 64, dtype=torch.bfloat16)).square().sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    masters = [master for _, copies, _ in optimizer.buckets for master in copies]
    assert all(master.dtype == torch.float32 for master in masters)
    assert layer.weight.dtype == torch.bfloat16 and not torch.equal(before, layer.weight)
    assert torch.equal(layer.weight, masters[0].to(torch.bfloat16)), \
        "the 16-bit weight is its master copy rounded"
    assert layer.weight.grad is None and all(m.grad is None for m in masters)


def test_a_failed_measurement_is_a_row_and_fails_the_run(tmp_path, monkeypatch, capsys):
    """A child's exception becomes the error of its row; the run exits 1."""
    from bench import memory_speed
    from bench.memory_speed import Measurement, child_main, main

    request = tmp_path / "request.json"
    failing = Measurement("tiny", "lora", "cpu", "float8", batch=1, seq=8, steps=1)
    request.write_text(json.dumps({"row": dataclasses.asdict(failing), "warmup": 0}))
    assert child_main(request) == 1
    failed = Measurement(**json.loads((tmp_path / "result.json").read_text()))
    assert failed.error.startswith("AttributeError:") and "float8" in failed.error, \
        failed.error

    monkeypatch.setattr(memory_speed, "run_in_child", lambda row, warmup: failed)
    assert main(["--models", "tiny", "--methods", "lora"]) == 1
    printed = capsys.readouterr()
    assert f"FAILED: {failed.error}" in printed.out, printed.out
    assert "1 of 1 measurements failed" in printed.err

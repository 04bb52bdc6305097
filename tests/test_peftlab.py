"""Unit tests of the helper library peftlab."""

import collections
import contextlib
import io
import tempfile

import pytest
import torch

from peftlab import checks, data, environment, models, training


def test_expect_equal_message_names_what_and_hint():
    with pytest.raises(AssertionError, match=r"count: expected 3, got 4\. Likely mistake: counted the bias"):
        checks.expect_equal(4, 3, "count", hint="counted the bias")
    checks.expect_equal(3, 3, "count")


def test_expect_close_is_relative():
    checks.expect_close(1e12 * (1 + 1e-9), 1e12, "flops")
    with pytest.raises(AssertionError, match="expected 1e\\+12, got 2e\\+12"):
        checks.expect_close(2e12, 1e12, "flops")


def test_expect_tensor_close_reports_shape_and_difference():
    a = torch.zeros(2, 3)
    with pytest.raises(AssertionError, match=r"expected shape \(3, 2\), got \(2, 3\)"):
        checks.expect_tensor_close(a, torch.zeros(3, 2), "output")
    with pytest.raises(AssertionError, match="largest difference 0.5"):
        checks.expect_tensor_close(a, a + 0.5, "output", hint="scaled twice")
    checks.expect_tensor_close(a, a + 1e-8, "output")


def test_llama2_7b_on_meta_has_the_published_parameter_count():
    model = models.meta_causal_lm(models.llama2_config("7B"))
    assert next(model.parameters()).device.type == "meta"
    assert models.count_parameters(model) == 6_738_415_616


def test_llama2_config_rejects_unknown_size():
    with pytest.raises(ValueError, match="unknown Llama-2 size '8B'"):
        models.llama2_config("8B")


def test_count_parameters_counts_shared_tensors_once_frozen_or_not():
    layer = torch.nn.Linear(4, 3)
    model = torch.nn.Sequential(layer, layer)
    layer.bias.requires_grad_(False)
    assert models.count_parameters(model) == 15


def test_minilm_classifier_loads_real_weights_offline():
    model = models.load_minilm_classifier(num_labels=2)
    assert models.count_parameters(model) == 22_713_986
    tokenizer = models.load_minilm_tokenizer()
    batch = tokenizer(["a fine test"], return_tensors="pt")
    assert model(**batch).logits.shape == (1, 2)


def test_course_dataset_loads_reviews():
    reviews = data.load_course_dataset("reviews")
    assert set(reviews) >= {"train", "test"}
    assert set(reviews["train"].column_names) >= {"text", "label"}
    assert set(reviews["train"]["label"]) == {0, 1}


def test_course_dataset_unknown_name_lists_what_exists():
    with pytest.raises(FileNotFoundError, match="shipped data sets: .*reviews"):
        data.load_course_dataset("no-such-set")


def test_hub_ids_are_not_fetched_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE is set"):
        data.load_course_dataset("stanfordnlp/sst2")


def test_data_dir_override_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv("PEFTLAB_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="PEFTLAB_DATA"):
        data.data_dir()


def test_describe_environment_reports_versions():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        report = environment.describe_environment()
    assert report["torch"] == torch.__version__
    assert report["device"] in {"cpu", "cuda"}
    assert "transformers" in out.getvalue()


def test_training_loop_lowers_the_loss_of_a_tiny_classifier():
    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)

        def forward(self, x, labels=None):
            logits = self.linear(x)
            loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
            return type("Out", (), {"loss": loss, "logits": logits})()

    x = torch.randn(64, 2)
    batches = [{"x": x[i : i + 16], "labels": (x[i : i + 16, 0] > 0).long()} for i in range(0, 64, 16)]
    model = Tiny()
    before = training.accuracy(model, batches)
    report = training.train(model, batches, epochs=20, lr=0.1)
    assert report.losses[-1] < report.losses[0]
    assert training.accuracy(model, batches) > max(before, 0.9)
    assert report.seconds > 0


def test_training_refuses_a_model_with_nothing_to_train():
    model = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        training.train(model, [])


def test_tiny_causal_lms_run_offline_and_llama_uses_gqa():
    from peftlab.models import tiny_causal_lm

    for architecture in ("gpt2", "llama"):
        model = tiny_causal_lm(architecture)
        assert model(torch.tensor([[1, 2, 3]])).logits.shape == (1, 3, 128)
    assert tiny_causal_lm("llama").config.num_key_value_heads < tiny_causal_lm("llama").config.num_attention_heads


def test_expect_runs_names_unfinished_code_and_wraps_errors():
    def unfinished():
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        checks.expect_runs(unfinished, what="unfinished()")
    with pytest.raises(AssertionError, match="raised RuntimeError.*Likely mistake: swapped"):
        checks.expect_runs(torch.ones(2, 3).matmul, torch.ones(2, 3), what="matmul", hint="swapped")
    assert checks.expect_runs(max, 1, 2, what="max") == 2


def test_autograding_follows_nbgraders_variable(monkeypatch):
    from peftlab.environment import autograding

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not autograding()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert autograding()


def _review_batches(count: int, batch_size: int):
    """The first ``count`` training reviews, tokenized for MiniLM."""
    reviews = data.load_course_dataset("reviews")["train"][:count]
    tokenizer = models.load_minilm_tokenizer()
    return training.tokenize_batches(tokenizer, reviews["text"], reviews["label"],
                                     batch_size=batch_size, max_length=32)


def test_compare_methods_measures_every_run(monkeypatch):
    from peft import get_peft_model

    from peftlab import comparison

    monkeypatch.setenv("PEFTLAB_PROGRESS", "text")
    methods = [m for m in comparison.default_methods()
               if m.name in ("full fine-tuning", "LoRA")]
    batches = _review_batches(16, batch_size=8)
    results = comparison.compare_methods(batches, batches[:1], methods=methods, seeds=[0])
    assert list(results["method"]) == ["full fine-tuning", "LoRA"]
    assert {"seed", "learning_rate", "steps", "accuracy", "train_seconds", "memory_bytes",
            "memory_measure", "trainable_parameters", "saved_bytes"} <= set(results)
    assert (results["steps"] == 2).all() and results["accuracy"].between(0, 1).all()
    for column in ("train_seconds", "memory_bytes", "trainable_parameters",
                   "saved_bytes"):
        assert (results[column] > 0).all(), column
    full, lora = results.iloc[0], results.iloc[1]
    whole_model = models.count_parameters(models.load_minilm_classifier())
    assert full["trainable_parameters"] == whole_model
    assert lora["trainable_parameters"] < full["trainable_parameters"] / 100
    assert results["memory_measure"].eq(comparison.COUNTED_STATE).all()
    assert lora["memory_bytes"] < full["memory_bytes"]
    # The saved size is what save_pretrained writes for the adapter (its values do not
    # change it).
    adapter_model = get_peft_model(models.load_minilm_classifier(), methods[1].adapter())
    assert lora["saved_bytes"] == comparison.saved_bytes(adapter_model)
    assert 4 * lora["trainable_parameters"] < lora["saved_bytes"]
    assert lora["saved_bytes"] < full["saved_bytes"] / 100


def test_training_state_bytes_counts_what_adamw_allocates():
    from peftlab.comparison import training_state_bytes

    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 3))
    model[0].requires_grad_(False)
    model.register_buffer("scale", torch.ones(7))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    model(torch.randn(2, 5)).sum().backward()
    optimizer.step()
    tensors = [*model.parameters(), *model.buffers(),
               *(p.grad for p in model.parameters() if p.grad is not None),
               *(t for state in optimizer.state.values() for t in state.values())]
    counted = sum(t.numel() * t.element_size() for t in tensors)
    assert training_state_bytes(model) == counted


def test_every_peft_method_trains_the_head_and_qlora_keeps_it_unquantised():
    import bitsandbytes as bnb
    from peft import get_peft_model

    from peftlab.comparison import default_methods, nf4_config, training_state_bytes

    head = 384 * 2 + 2
    state_bytes = {}
    for method in default_methods():
        if method.adapter is None:
            continue
        config = nf4_config() if method.quantize else None
        base = models.load_minilm_classifier(quantization_config=config)
        if method.quantize:
            query = base.bert.encoder.layer[0].attention.self.query
            assert isinstance(query, bnb.nn.Linear4bit)
            assert type(base.classifier) is torch.nn.Linear, "the head must stay in float"
        model = get_peft_model(base, method.adapter())
        state_bytes[method.name] = training_state_bytes(model)
        trained = {name for name, p in model.named_parameters() if p.requires_grad}
        head_trained = [name for name in trained if "classifier" in name]
        assert len(head_trained) == 2, f"{method.name}: head not trained"
        head_size = sum(p.numel() for name, p in model.named_parameters()
                        if name in head_trained)
        assert head_size == head, f"{method.name}: {head_size} head parameters trained"
    # Same adapter, the base in NF4: packed weights and their constants, embeddings in
    # float32.
    assert state_bytes["LoRA"] / 2 < state_bytes["QLoRA"] < 0.7 * state_bytes["LoRA"]


def test_summary_table_and_plot_show_mean_and_spread():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from peftlab.comparison import COUNTED_STATE, plot_comparison, summary_table

    rows = [dict(method=method, seed=seed, learning_rate=lr, steps=4, accuracy=acc,
                 train_seconds=1.0 + seed, memory_bytes=mem, memory_measure=COUNTED_STATE,
                 trainable_parameters=params, saved_bytes=saved)
            for method, lr, mem, params, saved, accs in (
                ("full fine-tuning", 1e-4, 4e8, 22_000_000, 9e7, (0.7, 0.8, 0.9)),
                ("LoRA", 5e-3, 9e7, 70_000, 3e5, (0.6, 0.6, 0.9)))
            for seed, acc in enumerate(accs)]
    table = summary_table(pd.DataFrame(rows))
    assert list(table.index) == ["full fine-tuning", "LoRA"]
    assert table.loc["LoRA", "accuracy"] == pytest.approx(0.7)
    assert (table.loc["LoRA", "acc min"], table.loc["LoRA", "acc max"]) == (0.6, 0.9)
    assert (table.loc["LoRA", "median s"], table.loc["LoRA", "s max"]) == (2.0, 3.0)
    assert table.loc["full fine-tuning", "memory MB"] == pytest.approx(400)
    figure = plot_comparison(pd.DataFrame(rows))
    scales = [ax.get_yscale() for ax in figure.axes if ax.axison]
    assert scales == ["linear", "linear", "linear", "log", "log"]


# ---------------------------------------------------------------------------------------------
# The capstone's plumbing (peftlab.capstone): the pieces the students' functions run inside.


def test_hardware_reports_native_bf16_only(monkeypatch):
    """On a T4 torch.cuda.is_bf16_supported() says True (emulation); hardware() must not."""

    class T4Properties:
        name, total_memory, major, minor = "Tesla T4", 15_828_320_256, 7, 5

    calls = []

    def is_bf16_supported(including_emulation=True):
        calls.append(including_emulation)
        return including_emulation  # what torch answers on a T4

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=0: T4Properties)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    found = environment.hardware()
    assert found["compute_capability"] == (7, 5)
    assert found["memory_gib"] == 14.7
    assert found["bf16"] is False and calls == [False]


def test_capstone_prompt_and_shipped_data():
    from peftlab import capstone

    train, test, categories = capstone.load_category_data(capstone.CPU_PROFILE)
    assert (len(train), len(test)) == (400, 48)
    assert categories == sorted({
        "brainstorming", "classification", "closed_qa", "creative_writing", "general_qa",
        "information_extraction", "open_qa", "summarization"})
    assert not {(r["instruction"], r["context"]) for r in train} & {
        (r["instruction"], r["context"]) for r in test}
    # the 48 scored rows are balanced: the majority-class baseline is 1/8
    assert collections.Counter(r["category"] for r in test) == dict.fromkeys(categories, 6)
    prompt = capstone.category_prompt({"instruction": " Why? ", "context": "x" * 1000})
    assert prompt == f"Instruction: Why?\nContext: {'x' * capstone.CONTEXT_CHARACTERS}\nCategory:"
    assert capstone.category_prompt({"instruction": "Hi", "context": ""}) == (
        "Instruction: Hi\nCategory:")


def test_capstone_gpu_profile_needs_the_hub_and_says_so(monkeypatch):
    from peftlab import capstone

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="CPU profile"):
        capstone.load_base_model(capstone.GPU_PROFILE)


def test_capstone_cpu_run_trains_measures_and_round_trips_the_adapter(tmp_path, monkeypatch):
    """The CPU profile end to end, shortened: 4-bit MiniLM, evaluated THEN trained (bitsandbytes'
    CPU inference repacking must not break training), peak memory, adapter saved and merged."""
    import dataclasses

    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig

    from peftlab import capstone

    profile = dataclasses.replace(capstone.CPU_PROFILE, steps=3)
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=torch.float32,
                                      llm_int8_skip_modules=["cls"])
    base = capstone.load_base_model(profile, quantization)
    model = get_peft_model(base, LoraConfig(r=2, target_modules="all-linear",
                                            task_type="CAUSAL_LM"))
    tokenizer = capstone.load_tokenizer(profile)
    assert tokenizer.eos_id == tokenizer.sep_token_id and tokenizer.pad_id == 0
    ids = torch.tensor([tokenizer("Instruction: What is tea?\nCategory: open_qa",
                                  add_special_tokens=False)["input_ids"]])
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)  # an evaluation pass first, as the capstone does
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    report = capstone.train_with_measurement(model, [batch], profile)
    assert len(report.losses) == 3 and report.seconds > 0
    assert report.tokens == 3 * ids.shape[1] and report.tokens_per_second > 0
    assert report.peak_memory_bytes > 2**20 and "resident" in report.memory_measured
    trip = capstone.adapter_round_trip(model, profile, ids, folder=tmp_path / "adapter")
    assert trip["adapter bytes on disk"] == capstone.folder_bytes(tmp_path / "adapter") > 0
    # without a folder (as the notebook calls it) the adapter's temporary folder is removed
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    temporary = capstone.adapter_round_trip(model, profile, ids)
    assert temporary["adapter bytes on disk"] == trip["adapter bytes on disk"]
    assert not list((tmp_path / "tmp").iterdir()), "adapter_round_trip left its folder behind"
    assert trip["max |merged - unmerged|"] < 1e-3
    assert trip["max |unquantised base + adapter - 4-bit base + adapter|"] > 0

"""Unit tests of the helper library peftlab."""

import contextlib
import io

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

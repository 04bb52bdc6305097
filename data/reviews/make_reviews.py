"""Generate the course's small product/service review data set (binary sentiment).

Run from the repository root:  python data/reviews/make_reviews.py
The output is deterministic (fixed seed): train.jsonl and test.jsonl beside this script.
Each line is {"text": ..., "label": 0 or 1} with 0 = negative and 1 = positive.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 2024
N_TRAIN, N_TEST = 600, 200

ITEMS = [
    "blender", "hotel room", "pizza", "phone case", "haircut", "laptop", "delivery", "coffee",
    "pair of headphones", "taxi ride", "mattress", "backpack", "museum tour", "gym class", "printer",
    "sushi", "rental car", "vacuum cleaner", "dentist visit", "concert ticket", "kettle",
    "yoga mat", "tent", "cleaning service", "smartwatch", "bakery", "train journey", "desk chair",
]

# Plain sentiment words and phrases.
POSITIVE = ["great", "excellent", "wonderful", "reliable", "comfortable", "delicious", "friendly",
            "fantastic", "solid", "pleasant", "impressive", "lovely"]
NEGATIVE = ["terrible", "awful", "broken", "disappointing", "rude", "noisy", "cheap-feeling",
            "useless", "overpriced", "flimsy", "dirty", "slow"]
# Negated phrases: the sentiment word points one way, the phrase the other.
NEGATED_POSITIVE = ["not bad at all", "not disappointing", "never a problem", "not overpriced",
                    "hardly a letdown", "far from terrible", "not slow in the least"]
NEGATED_NEGATIVE = ["not great", "hardly worth it", "not worth the money", "never comfortable",
                    "not what I hoped for", "far from reliable", "not friendly at all"]

POSITIVE_ENDINGS = ["I would buy it again.", "Highly recommended.", "Five stars from me.",
                    "I will come back.", "Worth every penny.", "My family loves it."]
NEGATIVE_ENDINGS = ["I want a refund.", "Avoid it.", "One star.", "I will not come back.",
                    "Waste of money.", "I returned it the next day."]
NEUTRAL_OPENINGS = ["I tried the {item} last week.", "We ordered the {item} for the weekend.",
                    "Bought the {item} on a friend's advice.", "Our {item} arrived on Monday.",
                    "Booked the {item} online.", ""]

TEMPLATES = [
    "The {item} was {word}.",
    "Honestly, the {item} is {word}.",
    "{opening} It was {word}.",
    "{opening} The {item} was {word}. {ending}",
    "What a {word} {item}! {ending}",
    "The {item}? {word_cap}. {ending}",
    "{opening} Overall the {item} was {negated}.",
    "The {item} was {negated}. {ending}",
    "I expected a lot, but the {item} was {negated}.",
    "{opening} To be fair, it was {negated}. {ending}",
]


def review(rng: random.Random, label: int) -> str:
    """One review with the given label (0 negative, 1 positive)."""
    item = rng.choice(ITEMS)
    word = rng.choice(POSITIVE if label else NEGATIVE)
    negated = rng.choice(NEGATED_POSITIVE if label else NEGATED_NEGATIVE)
    ending = rng.choice(POSITIVE_ENDINGS if label else NEGATIVE_ENDINGS)
    # A third of the endings are dropped, so many reviews hinge on the (possibly negated) phrase alone.
    if rng.random() < 0.33:
        ending = ""
    opening = rng.choice(NEUTRAL_OPENINGS).format(item=item)
    text = rng.choice(TEMPLATES).format(
        item=item, word=word, word_cap=word.capitalize(), negated=negated, ending=ending, opening=opening
    )
    text = " ".join(text.split())
    return text[0].upper() + text[1:]


def make_split(rng: random.Random, size: int, seen: set[str]) -> list[dict]:
    """``size`` distinct reviews, half of each label, none already in ``seen``."""
    rows = []
    while len(rows) < size:
        label = len(rows) % 2
        text = review(rng, label)
        if text in seen:
            continue
        seen.add(text)
        rows.append({"text": text, "label": label})
    rng.shuffle(rows)
    return rows


def main() -> None:
    rng = random.Random(SEED)
    seen: set[str] = set()
    folder = Path(__file__).resolve().parent
    for name, size in (("train", N_TRAIN), ("test", N_TEST)):
        rows = make_split(rng, size, seen)
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as file:
            for row in rows:
                file.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} reviews")


if __name__ == "__main__":
    main()

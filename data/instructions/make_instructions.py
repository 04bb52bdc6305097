"""Generate the course's small instruction data set, labelled with Dolly's eight categories.

Run from the repository root:  python data/instructions/make_instructions.py
The output is deterministic (fixed seed): train.jsonl and test.jsonl beside this script.
Each line is {"instruction": ..., "context": ..., "category": ...}: the fields of
databricks/databricks-dolly-15k that the capstone uses, so that one loader and one prompt serve both.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 2026
N_TRAIN_PER_CATEGORY, N_TEST_PER_CATEGORY = 50, 20

TOPICS = ["the moon", "coffee", "bicycles", "volcanoes", "chess", "the Roman Empire", "honeybees",
          "jazz", "rainforests", "electric cars", "the printing press", "tea", "glaciers", "penguins",
          "the internet", "solar panels", "football", "origami", "lighthouses", "the piano",
          "sourdough bread", "whales", "the Silk Road", "robots", "deserts", "kites", "trains"]
THINGS = [("apple", "fruit"), ("carrot", "vegetable"), ("banana", "fruit"), ("leek", "vegetable"),
          ("salmon", "fish"), ("trout", "fish"), ("eagle", "bird"), ("sparrow", "bird"),
          ("oak", "tree"), ("maple", "tree"), ("violin", "instrument"), ("drum", "instrument")]
PEOPLE = ["Ada", "Bruno", "Chen", "Dara", "Elif", "Femi", "Greta", "Hugo", "Ines", "Jonas"]
FACTS = ["people have studied {topic} for centuries", "many people first read about {topic} at school",
         "films and songs have featured {topic}", "there are museums devoted to {topic}",
         "scientists still argue about {topic}"]

TEMPLATES: dict[str, list[str]] = {
    "brainstorming": ["Give me some ideas for a party themed on {topic}.",
                      "List ten things I could do with {topic} this weekend.",
                      "What are some creative names for a shop about {topic}?",
                      "Brainstorm ways to teach children about {topic}."],
    "classification": ["Classify each of these as a {kind1} or a {kind2}: {items}.",
                       "Which of the following are {kind1}s and which are {kind2}s? {items}",
                       "Sort these into {kind1} and {kind2}: {items}.",
                       "Tell me whether each is a {kind1} or a {kind2}: {items}"],
    "closed_qa": ["According to the passage, when did {person} start working on {topic}?",
                  "Based on this text, why did {person} become interested in {topic}?",
                  "Using the paragraph above, who wrote the first book on {topic}?",
                  "From the reference text, how long has {person} studied {topic}?"],
    "creative_writing": ["Write a short poem about {topic}.",
                         "Write a story in which {person} discovers {topic}.",
                         "Compose a song verse about {topic}.",
                         "Write a letter from {person} to a friend describing {topic}."],
    "general_qa": ["Why do people enjoy {topic}?", "How can I get better at understanding {topic}?",
                   "What should a beginner know about {topic}?",
                   "Is it worth spending money on {topic}?"],
    "information_extraction": ["Extract every date mentioned in this text about {topic}.",
                               "From the passage, list the names of all people mentioned.",
                               "Pull out the places named in this paragraph about {topic}.",
                               "Extract the numbers from the text and say what each one counts."],
    "open_qa": ["What is {topic}?", "Who invented {topic}?", "When did {topic} first appear?",
                "Where can you find {topic}?"],
    "summarization": ["Summarize this paragraph about {topic} in one sentence.",
                      "Give me a short summary of the text about {topic}.",
                      "In two sentences, what is this passage about {topic} saying?",
                      "Write a TL;DR of the following text on {topic}."],
}
# Two more templates per category for the test split only: a held-out row is never a training
# template with other words filled in, so accuracy on it is not template recognition.
TEST_TEMPLATES: dict[str, list[str]] = {
    "brainstorming": ["Suggest a few fun activities related to {topic}.",
                      "What could a new club about {topic} do at its first meeting?"],
    "classification": ["Label each item as {kind1} or {kind2}: {items}.",
                       "Group the following by whether they are a {kind1} or a {kind2}: {items}"],
    "closed_qa": ["In the text, in which city did {person} begin working on {topic}?",
                  "Given the passage, how many books have followed {person}'s work on {topic}?"],
    "creative_writing": ["Write a limerick about {topic}.",
                         "Imagine {person} visiting a museum of {topic} and write the scene."],
    "general_qa": ["What is the best way to start learning about {topic}?",
                   "Do you think {topic} will still matter in fifty years?"],
    "information_extraction": ["List the years mentioned in the passage about {topic}.",
                               "Which city is named in this text, and what happened there?"],
    "open_qa": ["How old is {topic}?", "Who first wrote about {topic}?"],
    "summarization": ["Condense this text about {topic} into a single line.",
                      "Briefly, what does the passage about {topic} say?"],
}
WITH_CONTEXT = {"closed_qa", "information_extraction", "summarization"}
CATEGORIES = sorted(TEMPLATES)


def context(rng: random.Random, topic: str, person: str) -> str:
    """A short made-up reference paragraph about ``person`` and ``topic``."""
    year = rng.randrange(1850, 2020)
    fact = rng.choice(FACTS).format(topic=topic)
    city = rng.choice(["Lisbon", "Oslo", "Lagos", "Lima"])
    return (f"{person} began working on {topic} in {year}, in {city}. "
            f"Since then {fact}, and {rng.randrange(2, 40)} books have followed.")


def example(rng: random.Random, category: str,
            templates: dict[str, list[str]] = TEMPLATES) -> dict[str, str]:
    """One instruction of ``category`` from ``templates``, with its context ("" if none)."""
    topic, person = rng.choice(TOPICS), rng.choice(PEOPLE)  # a question asks about its context
    (a, kind1), (b, kind2) = rng.sample(THINGS, 2)
    others = [name for name, kind in THINGS if kind in (kind1, kind2) and name not in (a, b)]
    items = ", ".join(rng.sample(others + [a, b], k=min(4, len(others) + 2)))
    text = rng.choice(templates[category]).format(
        topic=topic, person=person, kind1=kind1, kind2=kind2, items=items)
    return {"instruction": text[0].upper() + text[1:],
            "context": context(rng, topic, person) if category in WITH_CONTEXT else "",
            "category": category}


def main() -> None:
    rng = random.Random(SEED)
    seen: set[tuple[str, str]] = set()
    splits: dict[str, list[dict[str, str]]] = {"train": [], "test": []}
    for split, per_category, templates in (("train", N_TRAIN_PER_CATEGORY, TEMPLATES),
                                           ("test", N_TEST_PER_CATEGORY, TEST_TEMPLATES)):
        by_category: dict[str, list[dict[str, str]]] = {}
        for category in CATEGORIES:
            by_category[category] = []
            while len(by_category[category]) < per_category:
                row = example(rng, category, templates)
                key = (row["instruction"], row["context"])
                if key in seen:
                    continue
                seen.add(key)
                by_category[category].append(row)
        if split == "train":
            splits[split] = [row for rows in by_category.values() for row in rows]
            rng.shuffle(splits[split])
        else:  # rounds of one row per category (shuffled): every prefix of 8k rows is balanced
            for round_ in range(per_category):
                order = rng.sample(CATEGORIES, len(CATEGORIES))
                splits[split] += [by_category[category][round_] for category in order]
    folder = Path(__file__).resolve().parent
    for split, rows in splits.items():
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{split}: {len(rows)} rows")


if __name__ == "__main__":
    main()

"""Tiny generated corpora for the text tests: three classes of templated sentences."""

from __future__ import annotations

import numpy as np

_TEMPLATES = {
    "HUM": ["who wrote the {x} ?", "who invented the {x} ?", "who is the author of {x} ?"],
    "LOC": ["where is the {x} ?", "where can i find the {x} ?", "in which city is the {x} ?"],
    "NUM": ["how many {x} are there ?", "how much does a {x} cost ?", "how old is the {x} ?"],
}
_FILLERS = ["bridge", "castle", "river", "lamp", "poem", "telescope", "piano", "tower", "garden", "engine", "ship", "book"]


def make_texts(per_class: int = 12, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``per_class`` distinct sentences for each of 3 classes (HUM, LOC, NUM), shuffled (seeded)."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for label, templates in _TEMPLATES.items():
        pool = [t.format(x=f) for t in templates for f in _FILLERS]
        for i in rng.permutation(len(pool))[:per_class]:
            X.append(pool[i])
            y.append(label)
    order = rng.permutation(len(X))
    return [X[i] for i in order], np.asarray(y)[order]


TINY_VAE = dict(steps=4, batch_size=8, vocab_size=80, min_frequency=1, embed_dim=16, hidden_dim=16, latent_dim=4,
                label_dim=4, max_len=16, checkpoint_every=100, log_every=2)

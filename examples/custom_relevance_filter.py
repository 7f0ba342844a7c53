"""Three ways to filter products by relevance, compared, then used in a Storefront.

    python examples/custom_relevance_filter.py

Runs offline in seconds on the demo catalog:

1. the built-in lexical filter (the default);
2. a trainable filter bootstrapped from weak labels, saved to JSON and loaded back;
3. your own scoring model wrapped with ScorerRelevanceFilter (here a tiny
   word-overlap function stands in for a cross-encoder such as
   ``sentence_transformers.CrossEncoder``; see docs/quality-safety.md).

Then it builds a page with the trained filter and prints the gate rejections
recorded in the page trace.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from storefront_sdk import Catalog, LexicalRelevanceFilter, Storefront, Theme
from storefront_sdk.demo import demo_user
from storefront_sdk.filtering.scorer import ScorerRelevanceFilter
from storefront_sdk.filtering.trainable import TrainableRelevanceFilter, weak_labels
from storefront_sdk.interfaces import RelevanceFilter
from storefront_sdk.testing import check_relevance_filter
from storefront_sdk.text import tokenize


def overlap_model(theme_text: str, product_texts: list[str]) -> list[float]:
    """Stand-in for a cross-encoder: share of a product's words the theme mentions.

    With a real one:  model = CrossEncoder("cross-encoder/ms-marco-MiniLM-L-6-v2")
    and  scorer = lambda q, docs: model.predict([(q, d) for d in docs]).tolist()
    wrapped as  ScorerRelevanceFilter(scorer, logits=True).
    """
    theme_words = set(tokenize(theme_text))
    scores = []
    for text in product_texts:
        words = set(tokenize(text))
        scores.append(len(theme_words & words) / len(words) if words else 0.0)
    return scores


# Themes as a generator would write them, with the aisles a merchandiser calls on-theme.
THEMES = [
    (
        Theme(title="Weeknight pasta night", concepts=["spaghetti", "marinara sauce", "parmesan"]),
        {"pasta", "pasta sauce"},
    ),
    (
        Theme(title="Movie night", concepts=["popcorn", "chips", "soda"]),
        {"chips pretzels", "soft drinks"},
    ),
    (
        Theme(title="Greek yogurt bowls", concepts=["greek yogurt", "granola", "honey"]),
        {"yogurt", "granola oatmeal"},
    ),
    (
        Theme(title="Happy pets", concepts=["dog treats", "cat litter"]),
        {"pet treats toys", "pet care", "cat food", "dog food"},
    ),
]


def evaluate(name: str, flt: RelevanceFilter, catalog: Catalog) -> None:
    """Precision and recall of what the filter keeps, against the aisle labels above."""
    candidates = list(catalog)[::3]  # a third of the catalog as "retrieved" candidates
    kept_on = kept = on = 0
    for theme, aisles in THEMES:
        scores = flt.score(theme, candidates)
        for product, score in zip(candidates, scores, strict=True):
            relevant = product.aisle in aisles
            on += relevant
            if score >= flt.threshold:
                kept += 1
                kept_on += relevant
    precision = kept_on / kept if kept else 0.0
    recall = kept_on / on if on else 0.0
    print(f"  {name:<28} kept {kept:4d}  precision {precision:.2f}  recall {recall:.2f}")


def main() -> None:
    catalog = Catalog.demo()

    # 2. Bootstrap a trainable filter from the catalog's structure, save it, load it back.
    pairs, labels = weak_labels(catalog, seed=0)
    trained = TrainableRelevanceFilter(catalog=catalog).fit(pairs, labels)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "relevance.json"
        trained.save(path)  # plain JSON: safe to share, no pickle
        trained = TrainableRelevanceFilter.load(path)
    print(f"trained on {len(pairs)} weak labels; top weights:")
    top = sorted(trained.coefficients.items(), key=lambda kv: -abs(kv[1]))[:4]
    print("  " + ", ".join(f"{k}={v:+.2f}" for k, v in top))

    # 3. Your own model behind the RelevanceFilter contract.
    custom = ScorerRelevanceFilter(overlap_model, threshold=0.2, batch_size=32)
    for flt in (trained, custom):
        check_relevance_filter(flt, catalog)  # the contract every filter must honour

    print("what each filter keeps for 4 generated-style themes:")
    evaluate("LexicalRelevanceFilter", LexicalRelevanceFilter(catalog), catalog)
    evaluate("TrainableRelevanceFilter", trained, catalog)
    evaluate("ScorerRelevanceFilter", custom, catalog)

    # Use it: a page for a demo user, with the default quality and safety gates.
    user = demo_user("demo-5")  # buys beer, but is not age-verified in this session
    page = Storefront(catalog, llm=None, cache=None, relevance_filter=trained).build(user)
    print(f"page for {user.user_id}:")
    for placement in page.placements:
        print(f"  {placement.theme.title:<40} {len(placement.products):3d} products")
    rejections = page.trace.events_of("gate")
    print(f"gate rejections ({len(rejections)}):")
    for event in rejections[:8]:
        print(f"  [{event.data.get('gate')}] {event.data.get('reason')}: {event.message}")


if __name__ == "__main__":
    main()

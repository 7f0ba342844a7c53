"""The judge's relevance model: trained on human labels, independent of the pipeline's filter."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from storefront_sdk import Catalog, Placement, Product, ScoredProduct, Theme, UserContext
from storefront_sdk.evaluation import JudgeRelevanceModel, RelevanceModelJudge
from storefront_sdk.evaluation.judge_relevance import (
    FEATURES,
    PairFeatures,
    TreeEnsemble,
    export_trees,
    load_model,
)
from storefront_sdk.evaluation.metrics import precision_on_theme
from storefront_sdk.exceptions import ConfigurationError
from storefront_sdk.types import Interaction, Page

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO.parent / "shared" / "data" / "homedepot" / "relevance_dev.csv"


def test_exported_trees_predict_like_scikit_learn() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=7).fit(x, y)
    data = export_trees(model)
    ens = TreeEnsemble(data["baseline"], data["trees"])
    assert len(ens) == 30
    np.testing.assert_allclose(ens.predict_proba(x), model.predict_proba(x)[:, 1], atol=1e-9)


def test_the_shipped_model_records_its_held_out_check() -> None:
    data = load_model()
    assert data["features"] == list(FEATURES)
    assert data["heldout"]["roc_auc"] >= 0.72
    with pytest.raises(ConfigurationError, match="not a"):
        JudgeRelevanceModel(model={"format": "x", "baseline": 0.0, "trees": []})


def test_features_see_words_misspellings_and_function_words() -> None:
    feats = PairFeatures(["Organic whole milk", "Curtain rod kit in brushed nickel", "Bar soap"])
    x = feats(
        ["curtain rods", "curtian rods", "soap and milk"], ["Curtain rod kit"] * 2 + ["Bar soap"]
    )
    cols = {name: i for i, name in enumerate(FEATURES)}
    assert x[0, cols["coverage"]] == 1.0  # "rods" is "rod" after stemming
    assert x[1, cols["coverage"]] == 0.5  # "curtian" misses...
    assert x[1, cols["fuzzy_coverage"]] > 0.3  # ...but shares trigrams with "curtain"
    assert x[2, cols["query_words"]] == 2  # "and" is not a word to match


def _catalog() -> Catalog:
    return Catalog(
        [
            Product(id="1", title="Organic Whole Milk", department="dairy eggs", aisle="milk"),
            Product(id="2", title="Greek Yogurt Plain", department="dairy eggs", aisle="yogurt"),
            Product(id="3", title="Lavender Bar Soap", department="personal care", aisle="soap"),
            Product(id="4", title="Sea Salt Potato Chips", department="snacks", aisle="chips"),
        ]
    )


def test_the_judge_grades_titles_not_the_pipeline() -> None:
    cat = _catalog()
    judge = RelevanceModelJudge(cat)
    user = UserContext(user_id="u", history=[Interaction(product_id="3", order_number=1)])

    def pl(title: str, kind: str, ids: list[str], pinned: list[str] = ()) -> Placement:  # type: ignore[assignment]
        return Placement(
            theme=Theme(title=title, kind=kind, pinned_product_ids=list(pinned)),
            products=[ScoredProduct.of(cat[i], pinned=i in pinned) for i in ids],
        )

    page = Page(
        user_id="u",
        placements=[
            pl("Buy it again", "buy_again", ["3"], ["3"]),  # own pin: on theme by definition
            pl("Milk", "aisle", ["1", "4"]),
            pl("Popular picks for you", "popular", ["2"]),  # names no product: not judged
        ],
    )
    report = judge.judge(page, user)
    verdicts = {(v.placement, v.product_id): v for v in report.of("product")}
    assert verdicts[(0, "3")].passed is True
    assert verdicts[(1, "1")].passed is True and verdicts[(1, "4")].passed is False
    assert verdicts[(2, "2")].passed is None
    assert precision_on_theme(page, report, k=5) == pytest.approx((1.0 + 0.5) / 2)
    assert "JudgeRelevanceModel" in report.judge


@pytest.mark.slow
def test_on_theme_auc_against_people_on_held_out_queries() -> None:
    """The judge's on-theme score against Home Depot human labels (relevant = grade >= 2.5),
    on the queries the shipped model was not trained on (the same seeded half split)."""
    if not LABELS.exists():
        pytest.skip(f"Home Depot labels not found at {LABELS}")
    import csv

    from sklearn.metrics import roc_auc_score

    with LABELS.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    queries = sorted({r["query"] for r in rows})
    random.Random(0).shuffle(queries)
    held_out = set(queries[len(queries) // 2 :])
    test = [r for r in rows if r["query"] in held_out]
    model = JudgeRelevanceModel(pair_features=PairFeatures(r["product_title"] for r in rows))
    scores = model.score_texts([r["query"] for r in test], [r["product_title"] for r in test])
    y = [float(r["relevance"]) >= 2.5 for r in test]
    assert roc_auc_score(y, scores) >= 0.72

"""TrainableRelevanceFilter: learns from (weak) labels, saves to JSON, loads safely."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from storefront_sdk import Catalog, ConfigurationError, StaticThemeGenerator, Storefront, Theme
from storefront_sdk.demo import demo_user
from storefront_sdk.filtering.trainable import (
    FEATURE_NAMES,
    TrainableRelevanceFilter,
    _calibrate,
    aisle_themes,
    weak_labels,
)
from storefront_sdk.testing import check_relevance_filter


def _auc(labels: list[int], scores: list[float]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.fixture(scope="module")
def split_themes(demo_catalog: Catalog) -> tuple[list[Theme], list[Theme]]:
    """Synthetic themes split by aisle: the test aisles are never seen in training."""
    themes = aisle_themes(demo_catalog, per_aisle=2)
    train = [t for i, t in enumerate(themes) if (i // 2) % 2 == 0]
    test = [t for i, t in enumerate(themes) if (i // 2) % 2 == 1]
    return train, test


@pytest.fixture(scope="module")
def fitted(
    demo_catalog: Catalog, split_themes: tuple[list[Theme], list[Theme]]
) -> TrainableRelevanceFilter:
    pairs, labels = weak_labels(demo_catalog, split_themes[0], seed=0)
    return TrainableRelevanceFilter(catalog=demo_catalog).fit(pairs, labels)


def test_weak_labels_pair_themes_with_their_aisle_and_other_departments(
    demo_catalog: Catalog,
) -> None:
    theme = Theme(title="Pasta night", concepts=["pasta", "pasta sauce"])
    pairs, labels = weak_labels(
        demo_catalog, [theme], positives_per_theme=10, negatives_per_theme=20
    )
    assert labels.count(1) == 10 and labels.count(0) == 20
    assert {p.aisle for (_, p), y in zip(pairs, labels, strict=True) if y == 1} <= {
        "pasta",
        "pasta sauce",
    }
    negatives = [p for (_, p), y in zip(pairs, labels, strict=True) if y == 0]
    assert all(p.aisle not in {"pasta", "pasta sauce"} for p in negatives)
    assert any(p.department == "pantry" for p in negatives)  # hard negatives: same department
    assert any(p.department != "pantry" for p in negatives)
    with pytest.raises(ConfigurationError, match="no theme names an aisle"):
        weak_labels(demo_catalog, [Theme(title="Zzz", concepts=["qwertyuiop"])])


def test_learns_on_theme_products_for_aisles_it_never_saw(
    demo_catalog: Catalog,
    fitted: TrainableRelevanceFilter,
    split_themes: tuple[list[Theme], list[Theme]],
) -> None:
    pairs, labels = weak_labels(demo_catalog, split_themes[1], seed=1)
    scores = [fitted.score(theme, [p])[0] for theme, p in pairs]
    assert _auc(labels, scores) >= 0.95
    accuracy = np.mean(
        [(s >= fitted.threshold) == bool(y) for s, y in zip(scores, labels, strict=True)]
    )
    assert accuracy >= 0.9
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_scores_a_generated_style_theme_sensibly(
    demo_catalog: Catalog, fitted: TrainableRelevanceFilter
) -> None:
    theme = Theme(
        title="Weeknight pasta night",
        description="Quick Italian dinners.",
        concepts=["spaghetti", "marinara sauce", "parmesan"],
    )
    on = [p for p in demo_catalog if p.aisle in ("pasta", "pasta sauce")]
    off = random.Random(0).sample(
        [p for p in demo_catalog if p.department not in ("pantry", "dairy eggs", "deli")], 60
    )
    s_on, s_off = fitted.score(theme, on), fitted.score(theme, off)
    assert np.mean(s_on) > np.mean(s_off) + 0.3
    assert np.mean(np.array(s_off) < fitted.threshold) >= 0.95
    assert np.mean(np.array(s_on) >= fitted.threshold) >= 0.4
    feats = fitted.features(theme, on[:3])
    assert set(feats) == set(FEATURE_NAMES) and all(len(v) == 3 for v in feats.values())


def test_honours_the_relevance_filter_contract(
    demo_catalog: Catalog, fitted: TrainableRelevanceFilter
) -> None:
    check_relevance_filter(fitted, demo_catalog)


def test_save_and_load_give_identical_scores(
    tmp_path: Path, demo_catalog: Catalog, fitted: TrainableRelevanceFilter
) -> None:
    path = tmp_path / "filter.json"
    fitted.save(path)
    loaded = TrainableRelevanceFilter.load(path)
    theme = Theme(title="Movie night", concepts=["popcorn", "chips", "soda"])
    products = list(demo_catalog)[::5]
    assert loaded.score(theme, products) == fitted.score(theme, products)
    assert loaded.threshold == fitted.threshold
    assert loaded.coefficients == fitted.coefficients
    assert TrainableRelevanceFilter.load(path, threshold=0.8).threshold == 0.8
    data = json.loads(path.read_text())
    assert data["format"] == "storefront_sdk.TrainableRelevanceFilter"
    assert data["features"] == list(FEATURE_NAMES)


@pytest.mark.parametrize("calibration", ["isotonic", "sigmoid", "none"])
def test_every_calibration_round_trips(
    tmp_path: Path, demo_catalog: Catalog, calibration: str
) -> None:
    pairs, labels = weak_labels(demo_catalog, aisle_themes(demo_catalog)[:30])
    flt = TrainableRelevanceFilter(calibration=calibration).fit(pairs, labels)  # type: ignore[arg-type]
    flt.save(tmp_path / "f.json")
    theme, products = pairs[0][0], [p for _, p in pairs[:40]]
    assert TrainableRelevanceFilter.load(tmp_path / "f.json").score(theme, products) == flt.score(
        theme, products
    )


def _corrupt(tmp_path: Path, fitted: TrainableRelevanceFilter, edit: object) -> Path:
    data = fitted.to_dict()
    if callable(edit):
        edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(format="something.else"), "format"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.update(coef=d["coef"][:3]), "coef"),
        (lambda d: d["coef"].__setitem__(2, "x"), "coef[2]"),
        (lambda d: d.pop("intercept"), "intercept"),
        (lambda d: d["scaler"].update(scale=[0.0] * len(d["scaler"]["scale"])), "scaler.scale"),
        (lambda d: d["calibration"].update(kind="magic"), "calibration.kind"),
        (lambda d: d["word"].update(df=d["word"]["df"][:-1]), "word.df"),
        (lambda d: d["char"].update(vocabulary=42), "char.vocabulary"),
        (lambda d: d.update(features=["a", "b"]), "features"),
    ],
)
def test_corrupt_model_files_fail_naming_file_and_field(
    tmp_path: Path, fitted: TrainableRelevanceFilter, edit: object, field: str
) -> None:
    path = _corrupt(tmp_path, fitted, edit)
    with pytest.raises(ConfigurationError) as err:
        TrainableRelevanceFilter.load(path)
    assert str(path) in str(err.value) and f"field {field!r}" in str(err.value)


def test_truncated_non_finite_and_missing_files(
    tmp_path: Path, fitted: TrainableRelevanceFilter
) -> None:
    good = tmp_path / "good.json"
    fitted.save(good)
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ConfigurationError, match=r"not valid JSON.*truncated"):
        TrainableRelevanceFilter.load(truncated)
    nan = tmp_path / "nan.json"
    nan.write_text(good.read_text().replace('"intercept":', '"intercept":NaN,"x":', 1))
    with pytest.raises(ConfigurationError, match="NaN"):
        TrainableRelevanceFilter.load(nan)
    with pytest.raises(ConfigurationError, match="not found"):
        TrainableRelevanceFilter.load(tmp_path / "missing.json")
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2, 3]")
    with pytest.raises(ConfigurationError, match="expected a JSON object"):
        TrainableRelevanceFilter.load(listing)


class _Exploit:
    """Unpickling this would create a marker file: loading must never unpickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.marker), "pwned"))  # type: ignore[return-value]


def test_loading_a_pickle_never_executes_it(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    bad = tmp_path / "model.json"
    bad.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(ConfigurationError, match=r"pickled models are not accepted|not valid JSON"):
        TrainableRelevanceFilter.load(bad)
    assert not marker.exists()


def test_unfitted_and_bad_training_input_give_clear_errors(demo_catalog: Catalog) -> None:
    flt = TrainableRelevanceFilter()
    theme = Theme(title="Snacks")
    with pytest.raises(ConfigurationError, match="not fitted"):
        flt.score(theme, list(demo_catalog)[:3])
    products = list(demo_catalog)[:4]
    with pytest.raises(ConfigurationError, match="4 pairs but 3 labels"):
        flt.fit([(theme, p) for p in products], [1, 0, 1])
    with pytest.raises(ConfigurationError, match="both classes"):
        flt.fit([(theme, p) for p in products], [1, 1, 1, 1])
    with pytest.raises(ConfigurationError, match=r"labels\[1\]"):
        flt.fit([(theme, p) for p in products], [1, 2, 0, 0])
    with pytest.raises(ConfigurationError, match="at least 2 examples of each class"):
        flt.fit([(theme, p) for p in products], [1, 0, 0, 0])
    assert (
        TrainableRelevanceFilter(calibration="none")
        .fit([(theme, p) for p in products], [1, 0, 0, 0])
        .is_fitted
    )
    with pytest.raises(ConfigurationError, match="threshold"):
        TrainableRelevanceFilter(threshold=1.5)


def test_plugs_into_a_storefront(demo_catalog: Catalog, fitted: TrainableRelevanceFilter) -> None:
    # Static themes pin nothing, so every placement is retrieved and filtered (history
    # themes of a returning user are pinned lists that never reach the filter).
    sf = Storefront(
        demo_catalog,
        llm=None,
        cache=None,
        relevance_filter=fitted,
        theme_generator=StaticThemeGenerator(),
    )
    page = sf.build(demo_user("demo-3"))
    assert page.placements
    stages = page.trace.stages_of("filter")
    assert stages and all(s.component == "TrainableRelevanceFilter" for s in stages)
    scored = [sp for pl in page.placements for sp in pl.products if sp.filter_score is not None]
    assert scored and all(sp.filter_score >= fitted.threshold for sp in scored)  # type: ignore[operator]


def test_a_version_1_model_file_still_loads_and_scores_as_fitted(
    demo_catalog: Catalog, fitted: TrainableRelevanceFilter, tmp_path: Path
) -> None:
    from storefront_sdk.filtering.relevance_features import V1_FEATURE_NAMES

    data = fitted.to_dict()
    assert data["version"] == 2 and data["features"] == list(FEATURE_NAMES)
    keep = len(V1_FEATURE_NAMES)
    # A version-1 file: the first eleven features (what this SDK wrote before version 2).
    old = {
        **data,
        "version": 1,
        "features": list(V1_FEATURE_NAMES),
        "coef": data["coef"][:keep],
        "scaler": {k: v[:keep] for k, v in data["scaler"].items()},
    }
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(old))
    loaded = TrainableRelevanceFilter.load(path)
    assert loaded.feature_names == V1_FEATURE_NAMES
    theme = Theme(title="Pasta night", concepts=["pasta", "pasta sauce"])
    products = list(demo_catalog)[:20]
    feats = np.array([loaded.features(theme, products)[n] for n in V1_FEATURE_NAMES]).T
    z = (feats - np.array(old["scaler"]["mean"])) / np.array(old["scaler"]["scale"])
    want = _calibrate(old["calibration"], z @ np.array(old["coef"]) + old["intercept"])
    assert loaded.score(theme, products) == pytest.approx(np.clip(want, 0, 1).tolist())
    # Saved again, it stays a version-1 file; a version-2 file with v1 features is refused.
    loaded.save(tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text())["version"] == 1
    with pytest.raises(ConfigurationError, match="features"):
        TrainableRelevanceFilter.from_dict({**old, "version": 2})

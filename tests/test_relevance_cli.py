"""``storefront relevance fit|eval`` on a labelled CSV written from the demo catalog."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from storefront_sdk import Catalog
from storefront_sdk.cli import main
from storefront_sdk.filtering.trainable import aisle_themes, weak_labels


@pytest.fixture()
def labels_csv(tmp_path: Path, demo_catalog: Catalog) -> Path:
    themes = aisle_themes(demo_catalog, per_aisle=1)[::4]
    pairs, labels = weak_labels(
        demo_catalog, themes, positives_per_theme=6, negatives_per_theme=6, seed=0
    )
    path = tmp_path / "labels.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["query", "product_id", "product_title", "relevance"])
        for (theme, product), y in zip(pairs, labels, strict=True):
            w.writerow([theme.title, product.id, product.title, 3 if y else 1])
    return path


def test_fit_then_eval(
    labels_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m.json"
    assert (
        main(
            ["relevance", "fit", "--csv", str(labels_csv), "--relevant-at", "2.5", "-o", str(model)]
        )
        == 0
    )
    assert model.exists()
    assert (
        main(
            [
                "relevance",
                "eval",
                "--csv",
                str(labels_csv),
                "--relevant-at",
                "2.5",
                "--model",
                str(model),
            ]
        )
        == 0
    )
    assert (
        main(
            ["relevance", "eval", "--csv", str(labels_csv), "--relevant-at", "2.5", "--folds", "3"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("ROC AUC") == 2 and "query-disjoint" in out


def test_bad_csv_names_row_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("query,product_title,relevance\npasta,Penne,3\npasta,Soap,high\n")
    assert main(["relevance", "eval", "--csv", str(bad)]) == 2
    assert "bad.csv:3: relevance 'high' is not a number" in capsys.readouterr().err
    missing = tmp_path / "m.csv"
    missing.write_text("q,title\n")
    assert main(["relevance", "fit", "--csv", str(missing), "-o", str(tmp_path / "x.json")]) == 2
    assert "missing column" in capsys.readouterr().err

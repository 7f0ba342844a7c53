"""Keyword shortlist quality and cost: lexical (TF-IDF) vs semantic (MiniLM) vs fused (RRF)
vs expanded: fused + the local chat model's shopping-list prior (``+chat``,
:mod:`storefront_sdk.keyword_expansion`), + the list a base model writes (``+list``,
:mod:`storefront_sdk.list_expansion`), or both (``+list+chat``, the default with a local model).

On the labelled grocery themes in ``tests/data/shortlist_themes.txt`` (written
against the demo catalog's taxonomy), prints recall@16 and recall@100 of each
shortlist mode (the lexical one is the baseline), per kind and on two held-out
halves (A: occasions + diets, B: cuisines + household + meals), the first-use
cost of embedding the taxonomy, the load-from-disk cost, and the per-theme
shortlist latency. ``--select`` also runs the expander's prompt grid, picks the
best configuration on one half and reports it on the other (both ways).
Usage: ``python benchmarks/bench_shortlist.py [--store-dir DIR] [--llm base|default]
[--select]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from storefront_sdk import Catalog
from storefront_sdk.embeddings import EmbeddingStore, LocalEmbedder
from storefront_sdk.keyword_expansion import CombinedExpander, KeywordExpander, LLMKeywordExpander
from storefront_sdk.list_expansion import ListKeywordExpander
from storefront_sdk.llm.outlines import LocalLLM
from storefront_sdk.taxonomy import KeywordTaxonomy

Labelled = list[tuple[str, str, list[str], list[str]]]
SPLIT_A = ("occasion", "diet")

THEMES = Path(__file__).resolve().parents[1] / "tests" / "data" / "shortlist_themes.txt"


def load_themes(
    taxonomy: KeywordTaxonomy, path: Path = THEMES
) -> list[tuple[str, str, list[str], list[str]]]:
    """``(kind, title, concepts, expected)``; ``kw?`` entries count only when in the taxonomy."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 4:
            raise ValueError(f"{path}:{n}: expected 4 '|'-separated fields, got {len(parts)}")
        kind, title, concepts, expected = parts
        exp: list[str] = []
        for kw in (k.strip() for k in expected.split(";")):
            optional = kw.endswith("?")
            kw = kw.rstrip("?")
            if kw in taxonomy:
                exp.append(kw)
            elif not optional:
                raise ValueError(f"{path}:{n}: expected keyword {kw!r} is not in the taxonomy")
        concept_list = [c.strip() for c in concepts.split(";") if c.strip()]
        out.append((kind, title, concept_list, exp))
    return out


def recall(
    taxonomy: KeywordTaxonomy,
    themes: Labelled,
    k: int,
    mode: str,
    expander: KeywordExpander | None = None,
) -> float:
    hits = total = 0
    for _, title, concepts, expected in themes:
        got = set(
            taxonomy.shortlist([title, *concepts], k=k, mode=mode, expander=expander)  # type: ignore[arg-type]
        )
        hits += sum(kw in got for kw in expected)
        total += len(expected)
    return hits / total


def halves(themes: Labelled) -> tuple[Labelled, Labelled]:
    """(A: occasions + diets, B: the rest) -- the held-out split for choices."""
    return [t for t in themes if t[0] in SPLIT_A], [t for t in themes if t[0] not in SPLIT_A]


GRID_TEMPLATES = (
    "Write a shopping list for {theme}.",
    "What groceries should I buy for {theme}?",
    "List foods, drinks and household products for: {theme}",
)
GRID_SYSTEMS = ("You are a grocery shopping assistant.", None)
GRID_WORDS = ("first", "max", "mean")


def select(tax: KeywordTaxonomy, themes: Labelled, llm: LocalLLM) -> None:
    """The expander's prompt grid: choose on one half, report on the other."""
    a, b = halves(themes)
    rows = []
    for template in GRID_TEMPLATES:
        for system in GRID_SYSTEMS:
            for words in GRID_WORDS:
                ex = LLMKeywordExpander(llm, template=template, system=system, words=words)  # type: ignore[arg-type]
                ra, rb = (recall(tax, h, 100, "expanded", ex) for h in (a, b))
                rows.append(
                    (ra, rb, f"{words:5s} system={'yes' if system else 'model'} {template!r}")
                )
                print(f"  grid A@100 {ra:.3f} B@100 {rb:.3f}  {rows[-1][2]}", flush=True)
    best_a = max(rows, key=lambda r: r[0])
    best_b = max(rows, key=lambda r: r[1])
    print(f"chosen on A ({best_a[0]:.3f}): {best_a[2]} -> held-out B recall@100 {best_a[1]:.3f}")
    print(f"chosen on B ({best_b[1]:.3f}): {best_b[2]} -> held-out A recall@100 {best_b[0]:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--store-dir", type=Path, default=None)
    ap.add_argument("--llm", choices=("base", "default"), default="base")
    ap.add_argument("--select", action="store_true", help="run the held-out prompt selection")
    args = ap.parse_args()
    store_dir = args.store_dir or Path(tempfile.mkdtemp(prefix="sf-emb-"))

    t0 = time.perf_counter()
    embedder = LocalEmbedder()
    tax = KeywordTaxonomy.from_catalog(Catalog.demo()).use_embedder(
        embedder, store=EmbeddingStore(store_dir)
    )
    tax.warm_up()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    tax2 = KeywordTaxonomy.from_catalog(Catalog.demo()).use_embedder(
        LocalEmbedder(), store=EmbeddingStore(store_dir)
    )
    tax2.keyword_vectors()
    load = time.perf_counter() - t0
    print(f"demo taxonomy: {len(tax)} keywords")
    print(
        f"first use (load model + embed + store): {first:.1f} s; second process load: {load:.3f} s"
    )

    themes = load_themes(tax)
    n_exp = sum(len(t[3]) for t in themes)
    print(f"labelled themes: {len(themes)}, expected keywords: {n_exp}")

    llm: LocalLLM | None = None
    expander: LLMKeywordExpander | None = None
    modes: list[tuple[str, str, KeywordExpander | None]] = [
        ("lexical", "lexical", None),
        ("semantic", "semantic", None),
        ("fused", "fused", None),
    ]
    if LocalLLM.available():
        t0 = time.perf_counter()
        llm = LocalLLM.base() if args.llm == "base" else LocalLLM.default()
        llm.warm_up()
        expander = LLMKeywordExpander(llm)
        print(f"chat prior: {expander.fingerprint} (model load {time.perf_counter() - t0:.1f} s)")
        modes.append(("+chat", "expanded", expander))
    else:
        print("expanded (chat prior): skipped, the local model is not installed")
    if ListKeywordExpander.available():
        t0 = time.perf_counter()
        lister = ListKeywordExpander.default()
        lister.warm_up()
        print(f"list expander: {lister.fingerprint} (join + load {time.perf_counter() - t0:.1f} s)")
        modes.append(("+list", "expanded", lister))
        if expander is not None and llm is not None:  # fresh instances: nothing memoised yet
            both = CombinedExpander([ListKeywordExpander.default(), LLMKeywordExpander(llm)])
            modes.append(("+list+chat", "expanded", both))
    else:
        print("expanded (list): skipped, the expand extra is not installed")
    a, b = halves(themes)
    print(
        f"{'shortlist':10s} {'recall@16':>10s} {'recall@100':>11s}   "
        f"{'A@16':>6s} {'A@100':>6s} {'B@16':>6s} {'B@100':>6s}  (A: occasions+diets, B: rest)"
    )
    lat: dict[str, list[float]] = {}
    for label, mode, ex in modes:
        if ex is not None:  # first call per theme: the model runs (nothing cached yet)
            lat[label] = []
            for _, title, concepts, _ in themes:
                t0 = time.perf_counter()
                tax.shortlist([title, *concepts], k=100, mode=mode, expander=ex)  # type: ignore[arg-type]
                lat[label].append((time.perf_counter() - t0) * 1000)
        figures = [recall(tax, h, k, mode, ex) for h in (themes, a, b) for k in (16, 100)]
        print(
            f"{label:10s} {figures[0]:10.3f} {figures[1]:11.3f}   "
            + " ".join(f"{x:6.3f}" for x in figures[2:])
        )
    kinds = sorted({t[0] for t in themes})
    last = (modes[-1][0], modes[-1][1:])
    for kind in kinds:
        sub = [t for t in themes if t[0] == kind]
        print(
            f"  {kind:10s} n={len(sub):3d} lexical@16 {recall(tax, sub, 16, 'lexical'):.3f} "
            f"fused@16 {recall(tax, sub, 16, 'fused'):.3f} "
            f"fused@100 {recall(tax, sub, 100, 'fused'):.3f} "
            f"{last[0]}@16 {recall(tax, sub, 16, *last[1]):.3f} "
            f"{last[0]}@100 {recall(tax, sub, 100, *last[1]):.3f}"
        )

    # per-theme latency, cold (concepts not yet embedded) and memoised
    fresh = KeywordTaxonomy.from_catalog(Catalog.demo()).use_embedder(
        LocalEmbedder(), store=EmbeddingStore(store_dir)
    )
    fresh.warm_up()
    for mode in ("lexical", "fused"):
        lat[mode] = []
        for _, title, concepts, _ in themes:
            t0 = time.perf_counter()
            fresh.shortlist([title, *concepts], k=100, mode=mode)  # type: ignore[arg-type]
            lat[mode].append((time.perf_counter() - t0) * 1000)
    for mode, xs in lat.items():
        print(
            f"shortlist latency {mode:8s} first call per theme: "
            f"median {statistics.median(xs):.1f} ms, max {max(xs):.1f} ms"
        )
    if args.select and llm is not None:
        select(tax, themes, llm)


if __name__ == "__main__":
    main()

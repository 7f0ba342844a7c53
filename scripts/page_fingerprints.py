"""Golden page fingerprints: prove a refactor keeps every page the same.

    python scripts/page_fingerprints.py            # print the fingerprints as JSON
    python scripts/page_fingerprints.py --write    # regenerate tests/data/page_fingerprints.json

Builds pages with the baseline components (``llm=None``, so no model and no
cache is involved and the pages are deterministic) for:

* ``demo``: the 6 demo users on :meth:`Catalog.demo` with the default
  :class:`~storefront_sdk.Storefront`;
* ``demo_static``: the same users with the :class:`StaticThemeGenerator` as primary
  (exercises the fallback and refill rounds differently);
* ``instacart``: Instacart users 1-10 from ``../shared/data/instacart`` (when
  present) on the Instacart catalog with those users' purchase popularity, with the
  default Storefront.

Each page becomes a compact fingerprint: per placement its title, source, keywords and
product ids in order (keywords as their sorted words, see
:func:`page_fingerprint`); for the trace, the stage names in order and the event kinds in
order (a gate event with its reason code). ``tests/test_page_equality.py`` rebuilds the
pages and compares them with the committed ``tests/data/page_fingerprints.json``.

When a change is *meant* to change pages (a new gate, another default, a ranking
fix), regenerate the file with ``--write`` in the same commit and say in the commit
message why the pages changed; the diff of the JSON shows exactly which pages moved.
A refactor that is meant to be behaviour-preserving must leave the file untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FINGERPRINTS = REPO / "tests" / "data" / "page_fingerprints.json"
INSTACART = Path(
    os.environ.get("STOREFRONT_INSTACART_DIR") or REPO.parent / "shared" / "data" / "instacart"
)
INSTACART_USERS = range(1, 11)


def page_fingerprint(page: Any) -> dict[str, Any]:
    """The parts of a page a refactor must keep: placements and what the trace says."""
    events = []
    for ev in page.trace.events:
        reason = ev.data.get("reason")
        events.append(f"{ev.kind}:{reason}" if ev.kind == "gate" and reason else ev.kind)
    return {
        "placements": [
            {
                "title": pl.theme.title,
                "source": pl.source,
                # Word order of a multi-word keyword depends on PYTHONHASHSEED until the
                # taxonomy builds its phrases in a stable order (issue #8, finding 5); BM25
                # retrieves the same products either way, so words are compared sorted.
                "keywords": [" ".join(sorted(kw.split())) for kw in pl.keywords],
                "products": pl.product_ids,
            }
            for pl in page.placements
        ],
        "stages": [s.stage for s in page.trace.stages],
        "events": events,
    }


def demo_fingerprints() -> dict[str, dict[str, Any]]:
    from storefront_sdk import Catalog, StaticThemeGenerator, Storefront
    from storefront_sdk.demo import demo_users

    catalog = Catalog.demo()
    default = Storefront(catalog, llm=None)
    static = Storefront(catalog, llm=None, theme_generator=StaticThemeGenerator())
    out: dict[str, dict[str, Any]] = {}
    for user in demo_users():
        out[f"demo/{user.user_id}"] = page_fingerprint(default.build(user))
        out[f"demo_static/{user.user_id}"] = page_fingerprint(static.build(user))
    return out


def instacart_fingerprints(directory: Path = INSTACART) -> dict[str, dict[str, Any]] | None:
    """Fingerprints of Instacart users 1-10, or None when the data is absent."""
    if not (directory / "products.csv").is_file():
        return None
    from storefront_sdk import Catalog, Storefront
    from storefront_sdk.evaluation.instacart import history_popularity, load_instacart_users

    catalog = Catalog.from_instacart(directory)
    cases = load_instacart_users(directory / "users_1_40", catalog, users=INSTACART_USERS)
    catalog = catalog.with_popularity(history_popularity(cases))
    sf = Storefront(catalog, llm=None)
    return {f"instacart/{c.user.user_id}": page_fingerprint(sf.build(c.user)) for c in cases}


def all_fingerprints() -> dict[str, dict[str, Any]]:
    out = demo_fingerprints()
    out.update(instacart_fingerprints() or {})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {FINGERPRINTS.name}")
    args = parser.parse_args(argv)
    prints = all_fingerprints()
    if not any(k.startswith("instacart/") for k in prints):
        print(f"note: no Instacart data at {INSTACART}; demo pages only", file=sys.stderr)
    text = json.dumps(prints, indent=1, sort_keys=True) + "\n"
    if args.write:
        FINGERPRINTS.parent.mkdir(parents=True, exist_ok=True)
        FINGERPRINTS.write_text(text, encoding="utf-8")
        print(f"wrote {len(prints)} page fingerprints to {FINGERPRINTS}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

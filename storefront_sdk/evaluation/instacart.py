"""Evaluation cases from the Instacart orders layout (Kaggle "Instacart Market Basket").

Each user becomes one :class:`EvalCase`: the history is every order before the
user's last order whose products are known (the ``train`` order when present,
else the last ``prior`` order), and the target is that last order's products.
A page built from the history is then scored on how much of the next basket
it shows (``next_basket_recall`` and friends in :mod:`.metrics`).
"""

from __future__ import annotations

import csv
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..catalog import Catalog
from ..exceptions import CatalogError
from ..types import Interaction, UserContext

__all__ = ["EvalCase", "history_popularity", "load_instacart_users"]


class EvalCase(BaseModel):
    """One user to evaluate: what the page may see (``user``) and what they bought next."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: UserContext
    target_product_ids: list[str]
    target_order_number: int | None = None
    skipped_unknown: int = Field(default=0, ge=0)
    """Interactions and target items dropped because the catalog does not know the product."""


def load_instacart_users(
    directory: str | Path,
    catalog: Catalog,
    *,
    users: Iterable[int | str] | None = None,
) -> list[EvalCase]:
    """Read ``orders.csv`` and ``order_products__*.csv`` from ``directory`` into eval cases.

    ``directory`` may also be the Instacart root with exactly one ``users_*`` folder
    holding the orders. ``users`` restricts to those user ids. Product ids the catalog
    does not know are skipped and counted (``EvalCase.skipped_unknown``, and a
    warning with the total). Users without a usable target order are left out.
    Malformed rows raise :class:`~storefront_sdk.exceptions.CatalogError` naming
    file, row and field.
    """
    root = _orders_dir(Path(directory))
    wanted = {str(u) for u in users} if users is not None else None

    # order_id -> (user_id, eval_set, order_number, session)
    orders: dict[str, tuple[str, str, int, dict[str, str]]] = {}
    orders_path = root / "orders.csv"
    for row_no, row in _rows(orders_path, ("order_id", "user_id", "eval_set", "order_number")):
        uid = row["user_id"]
        if wanted is not None and uid not in wanted:
            continue
        number = _int(row["order_number"], orders_path, row_no, "order_number")
        session = {
            key: row[col]
            for key, col in (
                ("day_of_week", "order_dow"),
                ("hour_of_day", "order_hour_of_day"),
                ("days_since_prior_order", "days_since_prior_order"),
            )
            if row.get(col)
        }
        orders[row["order_id"]] = (uid, row["eval_set"], number, session)

    items: dict[str, list[str]] = defaultdict(list)
    files = sorted(root.glob("order_products__*.csv"))
    if not files:
        raise CatalogError("no order_products__*.csv files found", path=str(root))
    for path in files:
        for _, row in _rows(path, ("order_id", "product_id")):
            if row["order_id"] in orders:
                items[row["order_id"]].append(row["product_id"])

    by_user: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for order_id, (uid, eval_set, number, _) in orders.items():
        if order_id in items:  # only orders whose products are known
            by_user[uid].append((number, eval_set, order_id))

    cases: list[EvalCase] = []
    total_skipped = 0
    for uid in sorted(by_user, key=_user_sort_key):
        user_orders = sorted(by_user[uid])
        train = [o for o in user_orders if o[1] == "train"]
        target = train[-1] if train else user_orders[-1]
        history_orders = [o for o in user_orders if o[0] < target[0]]
        skipped = 0
        history: list[Interaction] = []
        for number, _, order_id in history_orders:
            for pid in items[order_id]:
                if pid in catalog:
                    history.append(Interaction(product_id=pid, order_number=number))
                else:
                    skipped += 1
        targets: list[str] = []
        for pid in items[target[2]]:
            if pid not in catalog:
                skipped += 1
            elif pid not in targets:
                targets.append(pid)
        total_skipped += skipped
        if not targets:
            continue
        cases.append(
            EvalCase(
                user=UserContext(user_id=uid, history=history, session=orders[target[2]][3]),
                target_product_ids=targets,
                target_order_number=target[0],
                skipped_unknown=skipped,
            )
        )
    if total_skipped:
        warnings.warn(
            f"{root}: skipped {total_skipped} order items unknown to {catalog.name}",
            stacklevel=2,
        )
    return cases


def history_popularity(cases: Iterable[EvalCase]) -> dict[str, float]:
    """Purchase counts per product over the cases' histories only (never their targets).

    Feed it to ``catalog.with_popularity`` so every configuration ranks by the
    same popularity without seeing the answers.
    """
    counts: Counter[str] = Counter()
    for case in cases:
        for it in case.user.history:
            counts[it.product_id] += it.quantity
    return {pid: float(c) for pid, c in counts.items()}


# -- CSV plumbing ---------------------------------------------------------------------


def _orders_dir(path: Path) -> Path:
    if (path / "orders.csv").exists():
        return path
    if not path.is_dir():
        raise CatalogError("directory not found", path=str(path))
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and (p / "orders.csv").exists())
    if len(subdirs) == 1:
        return subdirs[0]
    if not subdirs:
        raise CatalogError("no orders.csv here or in a sub-folder", path=str(path))
    names = ", ".join(p.name for p in subdirs)
    raise CatalogError(f"several sub-folders hold orders.csv ({names}); pass one", path=str(path))


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a CSV file with their 1-based line number (header = row 1)."""
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot open: {exc.strerror}", path=str(path)) from None
    with fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for col in required:
            if col not in header:
                raise CatalogError("missing column", path=str(path), row=1, field=col)
        for row_no, row in enumerate(reader, start=2):
            for col in required:
                if not row.get(col):
                    raise CatalogError("empty value", path=str(path), row=row_no, field=col)
            yield row_no, row


def _int(value: str, path: Path, row: int, field: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise CatalogError(
            f"not an integer: {value!r}", path=str(path), row=row, field=field
        ) from None


def _user_sort_key(uid: str) -> tuple[int, int | str]:
    return (0, int(uid)) if uid.isdigit() else (1, uid)

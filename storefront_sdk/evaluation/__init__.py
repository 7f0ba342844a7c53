"""Offline evaluation: metrics, judges, Instacart eval cases and the side-by-side harness.

::

    from storefront_sdk.evaluation import load_instacart_users, evaluate, HeuristicJudge
    cases = load_instacart_users("data/instacart/users_1_40", catalog)
    report = evaluate(cases, {"history": sf})  # popular and buy_again beside it
    print(report.table())
"""

from .harness import CaseResult, EvalReport, evaluate, standard_configs
from .instacart import EvalCase, history_popularity, load_instacart_users
from .judge_relevance import JudgeRelevanceModel, RelevanceModelJudge
from .judges import HeuristicJudge, LLMJudge, title_problems
from .metrics import (
    OnTheme,
    aisle_coverage,
    density,
    department_coverage,
    discovery_recall,
    diversity,
    hit_rate,
    keyword_utilisation,
    mean_placement_size,
    nanmean,
    next_basket_recall,
    novelty,
    on_theme_from_filter,
    on_theme_from_report,
    precision_on_theme,
)
from .references import REFERENCES, buy_again_list, popular_list

__all__ = [
    "REFERENCES",
    "CaseResult",
    "EvalCase",
    "EvalReport",
    "HeuristicJudge",
    "JudgeRelevanceModel",
    "LLMJudge",
    "OnTheme",
    "RelevanceModelJudge",
    "aisle_coverage",
    "buy_again_list",
    "density",
    "department_coverage",
    "discovery_recall",
    "diversity",
    "evaluate",
    "history_popularity",
    "hit_rate",
    "keyword_utilisation",
    "load_instacart_users",
    "mean_placement_size",
    "nanmean",
    "next_basket_recall",
    "novelty",
    "on_theme_from_filter",
    "on_theme_from_report",
    "popular_list",
    "precision_on_theme",
    "standard_configs",
    "title_problems",
]

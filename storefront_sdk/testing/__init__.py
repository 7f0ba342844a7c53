"""Test support for users and backend authors of storefront_sdk.

* Conformance checks, like scikit-learn's ``check_estimator``: run them in your test
  suite against the components you plug in; each raises :class:`ConformanceError`
  (an ``AssertionError``) naming the rule that was broken::

      from storefront_sdk.testing import check_retriever
      check_retriever(MySearchServiceRetriever(...), catalog)

* :class:`MockLLM`, a scriptable in-process :class:`~storefront_sdk.llm.LLM`.
* :mod:`storefront_sdk.testing.stub_server`, a real OpenAI-compatible HTTP server on
  127.0.0.1 (``python -m storefront_sdk.testing.stub_server``); import it from there.

Nothing in the SDK's production modules imports this package.
"""

from . import conformance
from .conformance import *  # noqa: F403 - every public check, whatever the module adds
from .judge_checks import check_judge, sample_page
from .llm_checks import check_llm
from .mock_llm import LLMRequest, MockLLM, MockUsage

__all__ = ["LLMRequest", "MockLLM", "MockUsage", "check_judge", "check_llm", "sample_page"]
__all__ += conformance.__all__

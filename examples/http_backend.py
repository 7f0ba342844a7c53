"""Build storefront pages with an OpenAI-compatible server as the LLM.

The same code talks to OpenAI, vLLM, SGLang or llama.cpp's server: only
``base_url`` and ``model`` change. To run offline, this example starts
``StubOpenAIServer``, a real local HTTP server that answers with schema-valid
JSON and injects some rate limits, server errors and malformed answers, so
you can watch the client retry and re-ask. Point it at your own server with::

    llm = OpenAICompatibleLLM(base_url="http://gpu-box:8000/v1", model="Qwen/Qwen2.5-7B-Instruct")

Run: ``python examples/http_backend.py`` (a few seconds).
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

from storefront_sdk import Catalog, Storefront
from storefront_sdk.demo import demo_users
from storefront_sdk.llm import ChatMessage, OpenAICompatibleLLM, Structured
from storefront_sdk.testing.stub_server import StubOpenAIServer


class ThemeIdea(BaseModel):
    """One carousel idea: the schema the server must follow."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=40)
    concepts: list[str] = Field(min_length=2, max_length=5)


class ThemeIdeas(BaseModel):
    model_config = ConfigDict(extra="forbid")

    themes: list[ThemeIdea] = Field(min_length=3, max_length=3)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # retries log at WARNING; keep the output short
    catalog = Catalog.demo()
    users = demo_users()
    server = StubOpenAIServer(
        latency=0.02,  # pretend the model takes 20 ms
        failure_rate=0.15,
        failures=("rate_limit", "server_error", "malformed"),
        retry_after=0.05,  # what the 429s ask the client to wait
        seed=4,
    )
    with server as srv:
        llm = OpenAICompatibleLLM(
            base_url=srv.base_url,
            model="stub-model",
            response_format="auto",  # json_schema, or llama.cpp's json_object + schema
            max_retries=6,
            backoff_initial=0.05,
            prices={"stub-model": (0.00015, 0.0006)},  # USD per 1k prompt / completion tokens
        )
        with llm:
            # 1. One structured call: a validated pydantic instance plus usage.
            cook = users[0]
            bought = ", ".join(catalog[i.product_id].title for i in cook.history[:6])
            result = llm.generate(
                [
                    ChatMessage(role="system", content="You plan grocery storefront themes."),
                    ChatMessage(role="user", content=f"The shopper recently bought: {bought}."),
                ],
                Structured(ThemeIdeas),
            )
            print("themes from one call:")
            for idea in result.value.themes:
                print(f"  {idea.title!r}: {', '.join(idea.concepts)}")
            u = result.usage
            print(
                f"  usage: {u.prompt_tokens}+{u.completion_tokens} tokens, "
                f"{u.attempts} attempt(s), ${u.cost:.6f}, {u.latency_ms:.0f} ms"
            )

            # 2. Whole pages: the storefront drives the same client.
            storefront = Storefront(catalog, llm=llm)
            shoppers = users[:3]
            pages = storefront.build_many(shoppers, concurrency=3)
            for user, page in zip(shoppers, pages, strict=True):
                llm_stages = [s for s in page.trace.stages if s.model_id]
                tokens = sum(
                    (s.prompt_tokens or 0) + (s.completion_tokens or 0) for s in llm_stages
                )
                cost = sum(s.cost or 0.0 for s in llm_stages)
                sources = ", ".join(p.source for p in page.placements)
                print(
                    f"{user.user_id}: {len(page.placements)} placements ({sources}); "
                    f"{len(llm_stages)} LLM calls, {tokens} tokens, ${cost:.6f}"
                )

    print(
        f"server: {srv.request_count} requests, peak {srv.max_in_flight} at once, "
        f"injected {dict(srv.failures_injected)}"
    )


if __name__ == "__main__":
    main()

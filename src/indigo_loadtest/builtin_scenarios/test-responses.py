"""Responses API: plain and streamed, each without and with a function tool (google_search)."""

import itertools

from indigo_loadtest.jan import Flow, google_search_tool

PLAIN_PROMPT = "Tell me about the latest advancements in renewable energy technology."
TOOLS_PROMPT = "Google all news about the latest FED rate and summarize it for me"
STREAM_PROMPT = "Write a detailed explanation of quantum computing in 3 paragraphs."
STREAM_TOOLS_PROMPT = "Search for the latest AI breakthroughs and explain their significance"

flow = Flow("responses", "response", {
    "response_time_ms": "p(95)<60000",
    "response_stream_time_ms": "p(95)<60000",
    "response_time_with_tools_ms": "p(95)<300000",
    "response_stream_time_with_tools_ms": "p(95)<300000",
})
options = flow.options()
# Under load, iterations alternate between the no-tools and the with-tools request.
_turns = {"nonstream": itertools.count(), "stream": itertools.count()}


async def plain(jan):
    await jan.response(PLAIN_PROMPT, trend="response_time_ms", label="response non-stream")


async def with_tools(jan):
    await jan.response(TOOLS_PROMPT, trend="response_time_with_tools_ms",
                       label="response tools", tools=[google_search_tool()])


async def streamed(jan):
    await jan.response_stream(STREAM_PROMPT, trend="response_stream_time_ms",
                              label="response stream")


async def streamed_with_tools(jan):
    await jan.response_stream(STREAM_TOOLS_PROMPT, trend="response_stream_time_with_tools_ms",
                              label="response stream tools", tools=[google_search_tool(False)])


async def default(vu):
    """SINGLE_RUN: the functional flow, every step of the original."""
    flow.banner("RESPONSE API TESTS")
    async with flow.session(vu) as jan:
        if jan is None:
            return
        for step in (plain, with_tools, streamed, streamed_with_tools):
            await step(jan)
            await flow.pause(2)


async def nonstream(vu):
    """Load: one plain Responses request, with the tool every other iteration."""
    async with flow.session(vu) as jan:
        if jan is not None:
            await (with_tools if next(_turns["nonstream"]) % 2 else plain)(jan)


async def stream(vu):
    """Load: one streamed Responses request, with the tool every other iteration."""
    async with flow.session(vu) as jan:
        if jan is not None:
            await (streamed_with_tools if next(_turns["stream"]) % 2 else streamed)(jan)

"""Standard completions: guest login, token refresh, models, chat completion (plain, streamed)."""

from indigo_loadtest.jan import Flow

NONSTREAM_PROMPT = "Hello! Tell me a short interesting fact about artificial intelligence."
STREAM_PROMPT = "Write a short poem about technology in exactly 4 lines."

flow = Flow("completion-standard", "completion", {
    "models_time_ms": "p(95)<2000",
    "completion_time_ms": "p(95)<10000",
    "streaming_time_ms": "p(95)<15000",
})
options = flow.options()


async def default(vu):
    """SINGLE_RUN: the functional flow, every step of the original."""
    flow.banner("STANDARD COMPLETION TESTS")
    async with flow.session(vu) as jan:
        if jan is None:
            return
        await jan.models()
        await flow.pause()
        await jan.chat(NONSTREAM_PROMPT)
        await flow.pause()
        await jan.chat_stream(STREAM_PROMPT)


async def nonstream(vu):
    """Load: one guest lists the models and asks for a plain completion."""
    async with flow.session(vu) as jan:
        if jan is not None:
            await jan.models()
            await jan.chat(NONSTREAM_PROMPT)


async def stream(vu):
    """Load: one guest asks for a streamed completion."""
    async with flow.session(vu) as jan:
        if jan is not None:
            await jan.chat_stream(STREAM_PROMPT)

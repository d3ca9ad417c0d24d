"""One request to a hostile server per iteration, for tests/hostile (not a user scenario).

Configured with -e: TARGET (the URL), MODE (get: a plain GET; llm: a non-streamed
completion through measure_response; stream: a streamed one through measure_stream),
CODE (the error_code every failure must carry), REASON (its llm_errors reason) and
MAX_STREAM_EVENTS (the maxStreamEvents option).
"""

from indigo_loadtest import env, sleep
from indigo_loadtest.llm.stream_metrics import LLMMetrics, measure_response, measure_stream

MODE = env.get("MODE", "get")
CODE = env.get("CODE", "0")
REASON = env.get("REASON", "")
LLM = LLMMetrics()  # declared at import, so that thresholds may name llm_errors

thresholds = {
    # Every request fails, so this one fails and decides the exit code (99).
    "http_req_failed": ["rate<0.01"],
    # Sub-metrics, for the summary export: the failures with the expected code/reason.
    f"http_req_failed{{error_code:{CODE}}}": ["rate>0.99"],
}
if REASON:
    thresholds[f"llm_errors{{reason:{REASON}}}"] = ["count>0"]

options = {
    "scenarios": {"hostile": {"executor": "constant-vus", "vus": 1,
                              "duration": env.get("DURATION", "2s"), "gracefulStop": "30s"}},
    "timeout": env.get("TIMEOUT", "1.5s"),
    "maxStreamEvents": int(env.get("MAX_STREAM_EVENTS", "100000")),
    "thresholds": thresholds,
}


async def default(vu):
    url = env["TARGET"]
    if MODE == "stream":
        resp = await vu.http.post(url, json={"stream": True}, stream=True)
        await measure_stream(resp, {"prompt": "hostile"}, LLM)
    elif MODE == "llm":
        measure_response(await vu.http.post(url, json={}), {"prompt": "hostile"}, LLM)
    else:
        await vu.http.get(url)
    await sleep(0.05)

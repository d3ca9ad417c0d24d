"""Nothing the tool prints or writes holds a secret (docs/guarantees.md, "Secrets").

Real runs of the real CLI against the embedded simulator, with every secret in play:
API_KEY (the simulator accepts it), LOADTEST_TOKEN, the guest sessions' bearer and
refresh tokens (the scenario captures them from the simulator's replies), a remote-write
password, a key in a query string and a password in a URL. DEBUG is on and every output
is asked for. Then every byte of stdout, stderr, the result files and what the
remote-write listener received is searched for each secret: as it is, percent-encoded,
and inside any base64 text.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path
from urllib.parse import quote, quote_plus

import cramjam
import pytest
from cli_helpers import clean_env, run_cli, write_scenario
from rw_listener import Listener
from test_failures import closed_port

from indigo_loadtest.outputs.remote_write_pb import WriteRequest

SCENARIO = '''"""Every secret in play: API key, load-test token, guest tokens, keys in URLs."""
import json
from indigo_loadtest import check, env, sleep
from indigo_loadtest.jan import Flow, JanAPI, Session

flow = Flow("secrets", "completion", {})
options = {"vus": 2, "iterations": 4}
raised = False


def capture(session):
    # The tokens the simulator issued, for the test to search for (not a tool output).
    with open(env["CAPTURE_FILE"], "a", encoding="utf-8") as f:
        f.write(json.dumps([session.access_token, session.refresh_token]) + "\\n")


async def default(vu):
    global raised
    http, base = vu.http, env["BASE"]
    # A custom tag that carries a secret: written masked, like the url tag.
    r = await http.get(base + "/v1/models", headers={"Authorization": "Bearer " + env["API_KEY"]},
                       tags={"caller": env["API_KEY"]})
    check(r, {"API_KEY accepted": lambda r: r.status == 200})
    session = Session(flow.config, flow.metrics)
    await session.login(http)
    capture(session)
    await session.refresh(http)
    capture(session)
    jan = JanAPI(http, session, flow.metrics)
    await jan.models()
    await jan.chat("Hello", max_tokens=8)
    await jan.chat_stream("Hello", max_tokens=8)
    query = base + "/v1/models?page=1&api_key=" + env["QUERY_KEY"]
    r = await http.get(query, headers=session.headers())
    check(r, {"query-string request 200": lambda r: r.status == 200})
    userinfo = base.replace("://", "://guest:" + env["URL_USERINFO"] + "@") + "/v1/models"
    r = await http.get(userinfo, headers=session.headers())
    check(r, {"userinfo request 200": lambda r: r.status == 200})
    # A request that fails, with a key in its query: the error path and its tags.
    await http.get(f"http://127.0.0.1:{env['CLOSED_PORT']}/v1/models?token={env['QUERY_KEY']}")
    await sleep(0.3)  # periodic remote-write pushes happen during the test, not only at its end
    if not raised:  # once per process: an error message quoting secrets
        raised = True
        raise RuntimeError(f"refused {query} with {env['API_KEY']} as {session.access_token}")
'''


def secret_values() -> dict[str, str]:
    return {name: f"{name.lower()}-{secrets.token_hex(12)}" for name in
            ("API_KEY", "LOADTEST_TOKEN", "QUERY_KEY", "URL_USERINFO", "RW_PASSWORD")}


def leaks(blob: bytes, values: dict[str, str]) -> list[str]:
    """Each secret found in `blob`: as is, percent-encoded, or inside base64 text."""
    found = []
    for name, value in values.items():
        for form in {value, quote(value, safe=""), quote_plus(value, safe="")}:
            if form.encode() in blob:
                found.append(f"{name} as {form!r}")
    for token in set(re.findall(rb"[A-Za-z0-9+/_-]{8,}", blob)):
        for offset in range(4):  # the base64 text may start inside the run
            part = token[offset:].replace(b"-", b"+").replace(b"_", b"/")
            part = part[:-1] if len(part) % 4 == 1 else part + b"=" * (-len(part) % 4)
            try:
                raw = base64.b64decode(part)
            except ValueError:
                continue
            found += [f"{name} in base64 {token[:40]!r}..." for name, value in values.items()
                      if value.encode() in raw]
    return found


def remote_write_texts(listener: Listener) -> tuple[list[bytes], list[WriteRequest]]:
    """What the listener received, as bytes to search (headers but the credential it
    must receive, raw and decompressed bodies), and the decoded WriteRequests."""
    blobs, requests = [], []
    for headers, body in listener.received:
        shown = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        blobs += [json.dumps(shown).encode(), body]
        plain = bytes(cramjam.snappy.decompress_raw(body))
        blobs.append(plain)
        requests.append(WriteRequest.FromString(plain))
    return blobs, requests


def label_values(requests: list[WriteRequest], name: str) -> set[str]:
    return {lbl.value for req in requests for ts in req.timeseries for lbl in ts.labels
            if lbl.name == name}


@pytest.mark.parametrize("workers", [1, 2])
def test_no_secret_in_any_output(tmp_path: Path, echo_listener: Listener, workers: int) -> None:
    workdir = tmp_path / "work"
    (workdir / "scenarios").mkdir(parents=True)
    write_scenario(workdir, "leaky", SCENARIO)
    capture = tmp_path / "tokens.jsonl"
    values = secret_values()
    env = clean_env(
        API_KEY=values["API_KEY"], INDIGO_SIM_API_KEY=values["API_KEY"],
        LOADTEST_TOKEN=values["LOADTEST_TOKEN"], QUERY_KEY=values["QUERY_KEY"],
        URL_USERINFO=values["URL_USERINFO"], CAPTURE_FILE=str(capture),
        CLOSED_PORT=str(closed_port()), DEBUG="true", SINGLE_RUN="true",
        INDIGO_SIM_TTFT_MS="1", INDIGO_SIM_TOKENS_PER_SEC="0",
        K6_PROMETHEUS_RW_PUSH_INTERVAL="200ms",
    )
    rw_url = echo_listener.url.replace("://", f"://rwuser:{values['RW_PASSWORD']}@")
    # Raw-sample files are recorded in one process; worker processes print their own
    # DEBUG output and errors, and push through the main one.
    raw = {"json": "samples.ndjson", "csv": "samples.csv"} if workers == 1 else {}
    outs = [arg for kind, name in raw.items() for arg in ("--out", f"{kind}=results/{name}")]
    res = run_cli("run", "leaky", "--workers", str(workers), "--no-color", *outs,
                  "--out", f"prometheus-rw={rw_url}",
                  "--summary-export", "results/summary.json", cwd=workdir, env=env)

    # The secrets were really in play.
    tokens = [json.loads(line) for line in capture.read_text().splitlines()]
    assert len(tokens) >= 8 and all(access and refresh for access, refresh in tokens)
    for i, (access, refresh) in enumerate(tokens):
        values[f"access token {i}"], values[f"refresh token {i}"] = access, refresh
    basic = base64.b64encode(f"rwuser:{values['RW_PASSWORD']}".encode()).decode()
    assert len(echo_listener.received) >= 2
    assert all(h.get("Authorization") == f"Basic {basic}" for h, _ in echo_listener.received)
    assert "HTTP 401: unauthorized: got Basic [MASKED]" in res.stderr  # the echo was printed
    assert "credentials [MASKED] rejected" in res.stderr
    assert "error in scenario 'default'" in res.stderr and "api_key=[MASKED]" in res.stderr
    assert "> x-loadtest-token: [MASKED]" in res.stderr  # DEBUG printed every request (stderr)
    assert "> Authorization: Bearer [MASKED]" in res.stderr
    assert "< Set-Cookie: jan_refresh_token=[MASKED]" in res.stderr
    results = workdir / "results"
    checks = json.loads((results / "summary.json").read_text())["root_group"]["checks"]
    for name in ("API_KEY accepted", "query-string request 200", "userinfo request 200"):
        assert checks[name]["passes"] >= 4 and checks[name]["fails"] == 0, (name, res.stderr)
    for name in raw.values():
        text = (results / name).read_text()
        assert "/v1/models?page=1&api_key=[MASKED]" in text
        assert "http://[MASKED]@127.0.0.1:" in text
        assert "/v1/models?token=[MASKED]" in text
    rw_blobs, requests = remote_write_texts(echo_listener)
    labels = label_values(requests, "url")
    assert any(u.endswith("/v1/models?page=1&api_key=[MASKED]") for u in labels), labels
    assert label_values(requests, "caller") == {"[MASKED]"}

    # ... and none of them is in anything the tool printed, wrote or sent.
    written = [p for p in workdir.rglob("*") if p.is_file() and p.suffix != ".py"]
    assert {p.name for p in written} >= {"summary.json", *raw.values()}
    blobs = {"stdout": res.stdout.encode(), "stderr": res.stderr.encode(),
             **{str(p.relative_to(workdir)): p.read_bytes() for p in written},
             **{f"remote write #{i}": b for i, b in enumerate(rw_blobs)}}
    found = {where: hits for where, blob in blobs.items() if (hits := leaks(blob, values))}
    assert not found, json.dumps(found, indent=1)

"""The HTTP client against real loopback servers: bodies, connections, redirects,
timeouts, errors, metrics and tags."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from http_servers import PAYLOAD, free_port, metric_sinks, read_request, run, with_client

from indigo_loadtest.http import Client, ClientConfig
from indigo_loadtest.metrics import Registry, current_tags, tagset

pytestmark = pytest.mark.loop  # run again in pass 2 (tests/README.md)


def test_get_records_every_builtin_metric_with_k6_tags(server: Any) -> None:
    reg = Registry()
    url = f"{server.url}/hello"

    async def go(c: Client) -> Any:
        return await c.get(url)

    resp = run(with_client(go, reg))
    assert (resp.status, resp.body, resp.text, resp.ok, resp.error) == (200, b"hello", "hello",
                                                                          True, "")
    assert resp.url == url and resp.proto == "HTTP/1.1"
    assert resp.headers["content-length"] == "5"
    t = resp.timings
    assert t.connecting > 0 and t.waiting > 0 and t.tls_handshaking == 0
    assert t.duration == pytest.approx(t.sending + t.waiting + t.receiving)
    expected_tags = (("expected_response", "true"), ("method", "GET"), ("name", url),
                     ("status", "200"), ("url", url))
    names = ("http_reqs", "http_req_duration", "http_req_blocked", "http_req_connecting",
             "http_req_tls_handshaking", "http_req_sending", "http_req_waiting",
             "http_req_receiving", "http_req_failed", "data_sent", "data_received")
    for name in names:
        assert list(metric_sinks(reg, name)) == [expected_tags], name
    sinks = {n: metric_sinks(reg, n)[expected_tags] for n in names}
    assert sinks["http_reqs"].value == 1
    assert sinks["http_req_failed"].trues == 0 and sinks["http_req_failed"].total == 1
    assert sinks["http_req_duration"].max == pytest.approx(t.duration)
    # On-the-wire sizes: the request head we sent, and headers + body received.
    assert sinks["data_sent"].value == len(
        b"GET /hello HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n\r\n"
        % (url.split("/")[2].encode(), ClientConfig().user_agent.encode()))
    raw_head_len = sum(len(k) + len(v) + 4 for k, v in resp.headers.multi_items())
    assert sinks["data_received"].value == len("HTTP/1.1 200 OK\r\n") + raw_head_len + 2 + 5


def test_keep_alive_reuses_the_connection(server: Any) -> None:
    async def go(c: Client) -> list[Any]:
        return [await c.get(f"{server.url}/peer") for _ in range(4)]

    resps = run(with_client(go))
    assert len({r.text for r in resps}) == 1  # one client port: one connection
    assert resps[0].timings.connecting > 0
    assert [r.timings.connecting for r in resps[1:]] == [0.0, 0.0, 0.0]


def test_concurrent_requests_of_one_client_open_more_connections(server: Any) -> None:
    async def go(c: Client) -> list[Any]:
        return list(await asyncio.gather(*(c.get(f"{server.url}/peer") for _ in range(3))))

    resps = run(with_client(go))
    assert len({r.text for r in resps}) == 3 and all(r.status == 200 for r in resps)


def test_no_connection_reuse_dials_every_time(server: Any) -> None:
    async def go(c: Client) -> list[Any]:
        return [await c.get(f"{server.url}/peer") for _ in range(3)]

    resps = run(with_client(go, no_connection_reuse=True))
    assert len({r.text for r in resps}) == 3
    assert all(r.timings.connecting > 0 for r in resps)


def test_chunked_body(server: Any) -> None:
    resp = run(with_client(lambda c: c.get(f"{server.url}/chunked")))
    assert resp.status == 200 and resp.body == b"alpha-beta-gamma"
    assert resp.headers["transfer-encoding"] == "chunked"
    assert resp.timings.receiving > 0  # the chunks came 10 ms apart


def test_connection_close_response_is_not_reused(server: Any) -> None:
    async def go(c: Client) -> list[Any]:
        return [await c.get(f"{server.url}/close"), await c.get(f"{server.url}/peer"),
                await c.get(f"{server.url}/peer")]

    closed, first, second = run(with_client(go))
    assert closed.text == "bye" and closed.headers["connection"].lower() == "close"
    assert first.timings.connecting > 0  # a new connection after Connection: close
    assert second.timings.connecting == 0 and first.text == second.text


def test_head_has_no_body_and_the_connection_stays_usable(server: Any) -> None:
    async def go(c: Client) -> list[Any]:
        return [await c.head(f"{server.url}/hello"), await c.get(f"{server.url}/hello")]

    head, get = run(with_client(go))
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == "5"
    assert get.body == b"hello" and get.timings.connecting == 0


@pytest.mark.parametrize("code", [204, 304])
def test_bodiless_statuses(server: Any, code: int) -> None:
    async def go(c: Client) -> list[Any]:
        return [await c.get(f"{server.url}/status/{code}"), await c.get(f"{server.url}/hello")]

    first, second = run(with_client(go))
    assert first.status == code and first.body == b""
    assert second.body == b"hello" and second.timings.connecting == 0


def test_json_data_and_params_encoding(server: Any) -> None:
    async def go(c: Client) -> list[Any]:
        return [
            await c.post(f"{server.url}/echo?a=1", json={"x": [1, 2]}, params={"b": "2 3"}),
            await c.put(f"{server.url}/echo", data={"k": "v", "n": 1}),
            await c.patch(f"{server.url}/echo", data="plain", headers={"Content-Type": "x/y"}),
            await c.delete(f"{server.url}/echo", params=[("z", "1"), ("z", "2")]),
            await c.post(f"{server.url}/echo"),
            await c.options(f"{server.url}/echo"),
        ]

    j, form, text, delete, empty, options = (r.json() for r in run(with_client(go)))
    assert j["method"] == "POST" and j["body"] == '{"x":[1,2]}'
    assert j["query"] == [["a", "1"], ["b", "2 3"]]
    assert ["Content-Type", "application/json"] in j["headers"]
    assert form["body"] == "k=v&n=1"
    assert ["Content-Type", "application/x-www-form-urlencoded"] in form["headers"]
    assert text["body"] == "plain" and ["Content-Type", "x/y"] in text["headers"]
    assert delete["method"] == "DELETE" and delete["query"] == [["z", "1"], ["z", "2"]]
    assert ["Content-Length", "0"] in empty["headers"]
    assert options["method"] == "OPTIONS"


def test_default_and_per_request_headers(server: Any) -> None:
    async def go(c: Client) -> list[Any]:
        return [await c.get(f"{server.url}/echo"),
                await c.get(f"{server.url}/echo", headers={"user-agent": "mine", "X-A": "1"})]

    default, custom = (r.json()["headers"] for r in
                       run(with_client(go, headers={"X-Default": "d"}, user_agent="ua/1")))
    assert ["User-Agent", "ua/1"] in default and ["X-Default", "d"] in default
    # The caller's header replaces the default one whatever its case.
    assert [v for k, v in custom if k.lower() == "user-agent"] == ["mine"]
    assert ["X-A", "1"] in custom and ["X-Default", "d"] in custom


def test_redirects_are_followed_and_each_hop_is_measured(server: Any) -> None:
    reg = Registry()
    resp = run(with_client(lambda c: c.get(f"{server.url}/redirect/3", name="chain"), reg))
    assert resp.status == 200 and resp.text == "arrived"
    assert resp.url == f"{server.url}/redirect/0"
    by_status: dict[str, float] = {}
    for items, sink in metric_sinks(reg, "http_reqs").items():
        tags = dict(items)
        assert tags["name"] == "chain"  # the caller's name covers every hop
        by_status[tags["status"]] = by_status.get(tags["status"], 0) + sink.value
    assert by_status == {"302": 3, "200": 1}
    urls = {dict(items)["url"] for items in metric_sinks(reg, "http_reqs")}
    assert urls == {f"{server.url}/redirect/{n}" for n in range(4)}


def test_max_redirects_returns_the_last_redirect(server: Any) -> None:
    resp = run(with_client(lambda c: c.get(f"{server.url}/redirect/3"), max_redirects=1))
    assert resp.status == 302 and resp.url == f"{server.url}/redirect/2"


def test_see_other_turns_post_into_get(server: Any) -> None:
    resp = run(with_client(lambda c: c.post(f"{server.url}/see-other", json={"a": 1})))
    assert resp.status == 200 and resp.json()["method"] == "GET" and resp.json()["body"] == ""


def test_request_timeout(server: Any) -> None:
    reg = Registry()

    async def go(c: Client) -> list[Any]:
        return [await c.get(f"{server.url}/slow?ms=3000", timeout="200ms"),
                await c.get(f"{server.url}/hello")]

    timed_out, after = run(with_client(go, reg, timeout=5))
    assert (timed_out.status, timed_out.error_code, timed_out.error) == (0, 1050,
                                                                          "request timeout")
    assert 190 <= timed_out.timings.duration < 2000
    assert after.status == 200  # the client goes on with a fresh connection
    failed = [(dict(k), s.trues) for k, s in metric_sinks(reg, "http_req_failed").items()]
    assert ({"error": "request timeout", "error_code": "1050"}.items()
            <= next(k for k, trues in failed if trues).items())


def test_connection_refused_is_a_failed_request_not_an_exception() -> None:
    reg = Registry()
    url = f"http://127.0.0.1:{free_port()}/x"
    resp = run(with_client(lambda c: c.get(url), reg))
    assert (resp.status, resp.error_code, resp.ok) == (0, 1212, False)
    assert resp.error == "dial: connection refused"
    [(items, sink)] = metric_sinks(reg, "http_req_failed").items()
    assert (sink.trues, sink.total) == (1, 1)
    assert dict(items) == {"error": "dial: connection refused", "error_code": "1212",
                           "expected_response": "false", "method": "GET", "name": url,
                           "status": "0", "url": url}


def test_malformed_response(raw_server: Any) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 2x0 Nope\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    url = raw_server(handler)
    resp = run(with_client(lambda c: c.get(f"{url}/")))
    assert resp.status == 0 and resp.error_code == 1000
    assert resp.error.startswith("malformed HTTP response")


def test_close_before_response_and_close_delimited_body(raw_server: Any) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async def eof_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    hung, delimited = raw_server(hang_up), raw_server(eof_body)

    async def go(c: Client) -> list[Any]:
        return [await c.get(f"{hung}/"), await c.get(f"{delimited}/")]

    eof, body = run(with_client(go))
    assert (eof.status, eof.error_code, eof.error) == (0, 1000, "EOF")
    assert body.status == 200 and body.body == b"until the end" and body.error == ""


def test_stale_keep_alive_connection_is_retried_once(raw_server: Any) -> None:
    async def one_per_connection(reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> None:
        # Keep-alive advertised, but the server drops the connection after one answer.
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    url = raw_server(one_per_connection)

    async def go(c: Client) -> list[Any]:
        first = await c.get(f"{url}/")
        await asyncio.sleep(0.2)
        return [first, await c.get(f"{url}/")]

    first, second = run(with_client(go))
    assert first.body == second.body == b"ok" and second.error == ""


def test_informational_response_is_skipped(raw_server: Any) -> None:
    async def early_hints(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")
        await writer.drain()

    url = raw_server(early_hints)
    resp = run(with_client(lambda c: c.get(f"{url}/")))
    assert resp.status == 200 and resp.body == b"real" and "link" not in resp.headers


@pytest.mark.parametrize("path", ["/gzip", "/deflate"])
def test_compressed_bodies_are_decoded(server: Any, path: str) -> None:
    reg = Registry()
    resp = run(with_client(lambda c: c.get(f"{server.url}{path}"), reg))
    assert resp.status == 200 and resp.body == PAYLOAD
    [recv] = metric_sinks(reg, "data_received").values()
    assert recv.value < len(PAYLOAD)  # the wire carried the compressed size


def test_ipv6_loopback(server6: Any) -> None:
    resp = run(with_client(lambda c: c.get(f"{server6.url}/echo")))
    assert resp.status == 200
    assert dict(map(tuple, resp.json()["headers"]))["Host"] == server6.url.split("//")[1]


def test_tags_start_from_current_tags_and_add_the_callers(server: Any) -> None:
    reg = Registry()

    async def go(c: Client) -> Any:
        current_tags.set(tagset({"scenario": "s1", "group": "::g"}))
        await c.get(f"{server.url}/status/404", name="missing", tags={"flow": "x"})
        await c.get(f"{server.url}/status/404", expected_statuses={404})

    run(with_client(go, reg))
    tags = [(dict(items), sink.trues) for items, sink in
            metric_sinks(reg, "http_req_failed").items()]
    named = next(t for t, _ in tags if t["name"] == "missing")
    assert named == {"scenario": "s1", "group": "::g", "flow": "x", "method": "GET",
                     "name": "missing", "url": f"{server.url}/status/404", "status": "404",
                     "expected_response": "false", "error_code": "1404"}
    assert {t["expected_response"]: trues for t, trues in tags} == {"false": 1, "true": 0}


def test_discard_response_bodies(server: Any) -> None:
    reg = Registry()
    resp = run(with_client(lambda c: c.get(f"{server.url}/hello"), reg,
                           discard_response_bodies=True))
    assert resp.status == 200 and resp.body == b""
    assert next(iter(metric_sinks(reg, "data_received").values())).value > 5


def test_bad_arguments_raise(server: Any) -> None:
    async def go(c: Client) -> None:
        with pytest.raises(ValueError, match="unsupported HTTP method"):
            await c.request("FETCH", f"{server.url}/")
        with pytest.raises(ValueError, match="either json= or data="):
            await c.post(f"{server.url}/", json={}, data=b"")
        with pytest.raises(ValueError, match="CR/LF"):
            await c.get(f"{server.url}/", headers={"X": "a\r\nInjected: 1"})
        with pytest.raises(ValueError, match="invalid timeout"):
            await c.get(f"{server.url}/", timeout="soon")

    run(with_client(go))


def test_request_info_masks_secrets(server: Any) -> None:
    resp = run(with_client(lambda c: c.get(f"{server.url}/hello",
                                           headers={"Authorization": "Bearer s3cret"})))
    assert resp.request.method == "GET" and resp.request.url == f"{server.url}/hello"
    assert resp.request.headers["authorization"] == "Bearer [MASKED]"
    assert "s3cret" not in repr(resp.request.headers)


def test_unfollowable_location_returns_the_redirect(raw_server: Any) -> None:
    async def to_ftp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x\r\n"
                     b"Content-Length: 0\r\n\r\n")
        await writer.drain()

    url = raw_server(to_ftp)
    resp = run(with_client(lambda c: c.get(f"{url}/")))
    assert resp.status == 302 and resp.headers["location"] == "ftp://127.0.0.1/x"


def test_cross_host_redirect_drops_credentials(server: Any, raw_server: Any) -> None:
    # 127.0.0.1 -> localhost: another host, so Authorization and cookies stay behind.
    target = f"http://localhost:{server.port}/echo"

    async def away(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: %s\r\n"
                     b"Content-Length: 0\r\n\r\n" % target.encode())
        await writer.drain()

    url = raw_server(away)
    resp = run(with_client(lambda c: c.get(f"{url}/", cookies={"sid": "1"},
                                           headers={"Authorization": "Bearer x", "X-K": "v"})))
    names = {k.lower() for k, _ in resp.json()["headers"]}
    assert resp.url == target and "x-k" in names
    assert "authorization" not in names and "cookie" not in names

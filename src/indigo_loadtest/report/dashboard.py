"""`run --dashboard[=PORT]`: the report's charts, live, on 127.0.0.1 while the test runs.

The page is the report's (same charts, same embedded uPlot, no network beyond this
server); it asks `/data` every LIVE_PERIOD seconds for the charts of the points recorded
so far, so it costs the run nothing between requests and only reads what the time series
recorder already holds. It listens on the loopback interface only, and stops when the
run ends (the run's HTML report is the lasting view).

It shows what the run record shows, masked the same way (`mask_strings`; the target
without credentials), and answers only a request whose `Host` is this server's own
(127.0.0.1:PORT or localhost:PORT): a web page the browser loaded from elsewhere, whose
name an attacker rebinds to 127.0.0.1 (DNS rebinding), sends its own name and is refused.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ..http.redact import mask_strings
from .html import Run, build_charts, esc, page, when
from .record import LiveRecording

DEFAULT_PORT = 5665  # k6's web dashboard port
HOST = "127.0.0.1"
LIVE_PERIOD = 2.0


class Dashboard:
    def __init__(self, recording: LiveRecording, meta: dict[str, Any]) -> None:
        self.recording = recording
        self.meta = mask_strings(meta)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._hosts: frozenset[str] = frozenset()

    async def start(self, port: int) -> str:
        """Listen on 127.0.0.1:`port` (0: any free port); returns the URL. OSError when
        the port is taken."""
        app = web.Application(middlewares=[self._own_host_only])
        app.router.add_get("/", self._page)
        app.router.add_get("/data", self._data)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._hosts = frozenset({f"{HOST}:{bound}", f"localhost:{bound}"})
        self.url = f"http://{HOST}:{bound}/"
        return self.url

    @web.middleware
    async def _own_host_only(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Host", "").lower() not in self._hosts:
            return web.Response(status=403, text="forbidden: not this dashboard's host\n")
        return await handler(request)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def live(self) -> dict[str, Any]:
        """The charts of the points so far, and one line of status."""
        registry = self.recording.source()
        record = {"series": self.recording.recorder.series.to_json(),
                  "totals": {m.name: {} for m in registry}}
        charts, slots = build_charts([Run(self.meta["scenario"], record)])
        elapsed = time.time() - self.recording.started_at
        status = (f"live: {elapsed:.0f} s since {when(self.recording.started_at)}, "
                  f"{len(record['series']['t'])} points; updated every {LIVE_PERIOD:g} s")
        return mask_strings({"charts": charts, "slots": "".join(slots), "status": status})

    async def _page(self, request: web.Request) -> web.Response:
        live = self.live()
        body = (f"<header><h1>{esc(self.meta['scenario'])}</h1>"
                f"<p>{esc(self.meta.get('target', ''))}</p>"
                f"<p class='hint' id='live-status'>{esc(live['status'])}</p></header>"
                f"<section><h2>Over time</h2><div class='grid' id='live-charts'>"
                f"{live['slots']}</div></section>")
        data = {"charts": live["charts"], "histograms": [], "live": "/data",
                "period": LIVE_PERIOD}
        return web.Response(text=page(f"{self.meta['scenario']} — live", body, data),
                            content_type="text/html")

    async def _data(self, request: web.Request) -> web.Response:
        return web.json_response(self.live())

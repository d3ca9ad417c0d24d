"""Virtual users: the `vu` object a scenario function receives.

A VU is created once (test-wide id, its own HTTP client, so keep-alive connections
persist across its iterations; cookies too with `noCookiesReset`, else its jar is
emptied at the start of each iteration, as in k6) and activated for one scenario at a
time; between scenarios that do not overlap it is reused, as k6 reuses initialised
VUs. The VU whose code is running now is in `current_vu`, which the module-level
`http` proxy of the scenario API reads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from ..metrics.tags import EMPTY, TagSet

# The VU running the current task (set by VU tasks, setup and teardown).
current_vu: ContextVar[VU | None] = ContextVar("current_vu", default=None)
# The name of the synchronous hook running now ("setup", "teardown"): it cannot await.
sync_hook: ContextVar[str | None] = ContextVar("sync_hook", default=None)

ClientFactory = Callable[[], Any]

_NO_ENV: Mapping[str, str] = MappingProxyType({})


class VU:
    """One virtual user, as seen by scenario code (`async def default(vu): ...`)."""

    __slots__ = (
        "_client", "_client_factory", "data", "env", "id", "id_in_scenario", "iteration",
        "scenario", "tags",
    )

    id: int  # 1-based, unique in the test (0 for setup/teardown)
    id_in_scenario: int  # 1-based within the scenario it runs now
    iteration: int  # 0-based iteration of this VU in this scenario
    scenario: str
    data: Any  # setup()'s return value
    env: Mapping[str, str]
    tags: TagSet  # base tags: test-wide + scenario tags + scenario=<name>

    def __init__(self, vu_id: int, client_factory: ClientFactory, data: Any = None) -> None:
        self.id = vu_id
        self.id_in_scenario = 0
        self.iteration = 0
        self.scenario = ""
        self.data = data
        self.env = _NO_ENV
        self.tags = EMPTY
        self._client_factory = client_factory
        self._client: Any = None

    @property
    def http(self) -> Any:
        """This VU's HTTP client, created on first use."""
        client = self._client
        if client is None:
            client = self._client = self._client_factory()
        return client

    def activate(self, scenario: str, id_in_scenario: int, tags: TagSet,
                 env: Mapping[str, str]) -> None:
        """Prepare this VU to run iterations of `scenario`."""
        self.scenario = scenario
        self.id_in_scenario = id_in_scenario
        self.iteration = 0
        self.tags = tags
        self.env = env

    def clear_cookies(self) -> None:
        """Empty the client's cookie jar (a client not created yet has none)."""
        jar = getattr(self._client, "cookies", None)
        if jar:
            jar.clear()

    async def close(self) -> None:
        """Close the HTTP client (its connections), if one was created."""
        client, self._client = self._client, None
        if client is None:
            return
        closer = getattr(client, "aclose", None) or getattr(client, "close", None)
        if closer is None:
            return
        result = closer()
        if inspect.isawaitable(result):
            await result

    def __repr__(self) -> str:
        return f"VU(id={self.id}, scenario={self.scenario!r}, iteration={self.iteration})"

"""The garbage collector in a load-generating process.

Everything that exists once the scenario is loaded (the modules of this package, its
dependencies and the scenario's, their functions, classes and constants) lives until
the process ends, yet every full collection of the cyclic garbage collector walks all
of it again. With thousands of streams, full collections come every few seconds, and
each one holds the event loop while a response may be arriving (measured at 1,000
paced streams: 57 ms per full collection before, 23 ms after freezing). `gc.freeze()`
moves those objects out of the collector's reach; what the run creates afterwards is
collected as before.

Full collections also come less often: after 100 collections of the middle generation
instead of 10. Each stream's objects (request, response, meter: they live as long as
the stream) reach the oldest generation, and at 1,000 streams the default starts a
full collection about every 2.5 s, 25-50 ms each even with the freeze (200 ms at
5,000 streams), holding the loop while responses arrive. Young collections still run
as before and free most cyclic garbage; what reaches the oldest generation waits
longer to be freed.
"""

from __future__ import annotations

import gc

FULL_COLLECTION_EVERY = 100  # middle-generation collections per full one (default 10)


def freeze_loaded() -> None:
    """Collect what loading left behind, exempt every surviving object from later
    collections, and space full collections out. Call once per process, after the
    scenario is loaded and before its load starts."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)

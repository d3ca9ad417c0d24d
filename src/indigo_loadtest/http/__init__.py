"""The per-VU HTTP client, its timings, and SSE streams."""

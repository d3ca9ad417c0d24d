"""The live-metrics stack the Prometheus remote-write output (`outputs.prometheus_rw`)
pushes to: `stack.py` runs `monitoring up|down` and serves `run --monitor`."""

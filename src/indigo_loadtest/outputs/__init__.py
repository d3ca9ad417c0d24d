"""Result outputs: JSON, CSV, Prometheus remote write."""

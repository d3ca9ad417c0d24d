"""Scenario files: discovery, loading, options, env and .env."""

"""Executors, VUs and their scheduling."""

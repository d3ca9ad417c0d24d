"""Helpers for the Indigo (Jan) Server API."""

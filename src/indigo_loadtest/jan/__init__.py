"""Helpers for the Indigo (Jan) Server API: guest sessions, the API steps, and the
scenario scaffolding (options, sessions, pauses) that keeps scenario files short."""

from .api import JanAPI, StreamReply, google_search_tool
from .flow import Flow, LoadSettings, arrival_scenario
from .metrics import FlowMetrics
from .session import JanConfig, JanConfigError, Session, SessionPool, refresh_token_from

__all__ = [
    "Flow", "FlowMetrics", "JanAPI", "JanConfig", "JanConfigError", "LoadSettings", "Session",
    "SessionPool", "StreamReply", "arrival_scenario", "google_search_tool",
    "refresh_token_from",
]

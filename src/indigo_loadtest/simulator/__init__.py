"""The embedded Indigo API simulator."""

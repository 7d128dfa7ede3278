"""Adapters to the operating system itself (clock discipline state)."""

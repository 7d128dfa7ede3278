"""Benchmarks: measured figures for the design decisions (outbox, broker, bus)."""

"""Persistence adapters: atomic TinyDB documents and the SQLite durable outbox."""

"""Proof about the log: its hash chains verified, its reads counted."""

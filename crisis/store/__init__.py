"""Materialised state on local disk: the fold's storage plus the log position it reflects."""

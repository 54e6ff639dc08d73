"""Tabletop exercises: scenario scripts, a runner on the real bus, and the after-action report."""

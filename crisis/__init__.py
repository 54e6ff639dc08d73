"""crisis-bus: real-time coordination bus for online crisis response."""

__version__ = "0.1.0"

"""Crypto-shredding: sensitive event fields sealed with AES-GCM under keys that erasure destroys."""

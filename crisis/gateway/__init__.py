"""The live WebSocket stream: `GET /v1/stream`, fed by one Kafka reader per process (the ledger).

protocol.py and cursor.py are pure; fanout.py is the live path, resume.py the catch-up from a cursor,
snapshot.py the first `state` messages, server.py the websockets server that ties them together.
"""

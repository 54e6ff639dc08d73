"""`crisis up`, `crisis serve api|gateway`, `crisis broker`: the processes that run the bus."""

from __future__ import annotations

import argparse

from crisis.cli.lazy import lazy


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser("up", help="run everything on this machine: embedded broker, API, gateway, console")
    up.add_argument("--api-port", type=int, default=None, help="default 8000")
    up.add_argument("--gateway-port", type=int, default=None, help="default 8001")
    up.set_defaults(run=lazy("crisis.cli.serving", "run_up"))

    serve = sub.add_parser("serve", help="run the API or the gateway on the bus CRISIS_BUS_URL names")
    serve.add_argument("what", choices=["api", "gateway"])
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(run=lazy("crisis.cli.serving", "run_serve"))

    broker = sub.add_parser("broker", help="run the embedded Kafka-compatible broker alone")
    broker.add_argument("--port", type=int, default=None, help="default: a free port")
    broker.set_defaults(run=lazy("crisis.cli.serving", "run_broker_command"))

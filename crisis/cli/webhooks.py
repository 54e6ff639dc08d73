"""`crisis webhooks list|add|remove|deliveries|redeliver`: an organisation's webhooks over the HTTP API.

Through `crisis.client.Client`, like every officer command: one retry policy, a write retried only with its
Idempotency-Key. URLs and descriptions are the organisation's text, shown through `printable`.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any

from crisis.domain.enums import EventType, Mode
from crisis.endpoints import API_URL_ENV
from crisis.terminal import printable

if TYPE_CHECKING:
    from crisis.client.http import Client

# crisis.domain.webhooks.DeliveryState's values, named here so that building the parser loads no model.
STATES = ("pending", "delivered", "dead")


def _client(args: argparse.Namespace) -> Client:
    from crisis.cli.errors import CliError
    from crisis.client.http import Client

    if not args.key:
        raise CliError("no API key: pass --key or set CRISIS_KEY (crisis keys add prints one)")
    return Client(args.api, args.key)


def hook_line(hook: dict[str, Any]) -> str:
    kinds = ",".join(hook.get("types") or [])
    modes = ",".join(hook.get("modes") or [])
    text = f"{hook.get('id')}  {hook.get('url')}  types={kinds}  modes={modes}  {hook.get('description', '')}"
    return printable(text.rstrip())


def delivery_line(d: dict[str, Any]) -> str:
    return printable(
        f"{d.get('endpoint_id')}  {d.get('event_id')}  {d.get('state'):<9}  {d.get('event_type')}  "
        f"crisis {d.get('crisis_id')}  attempts this round {d.get('attempts_this_round')}  "
        f"updated {d.get('updated_at')}"
    )


def _list(args: argparse.Namespace) -> int:
    with _client(args) as api:
        hooks = api.get("/v1/webhooks")  # a plain list: an organisation has a bounded number
    for hook in hooks:
        print(json.dumps(hook) if args.json else hook_line(hook))
    return 0


def _add(args: argparse.Namespace) -> int:
    body = {
        "url": args.url,
        "types": args.type,
        "modes": args.mode or ["live"],
        "description": args.description,
    }
    with _client(args) as api:
        created = api.post("/v1/webhooks", body)
    print(hook_line(created))
    # Shown once, by this answer only: alone on the last line, for `| tail -n 1`.
    print(created["secret"])
    return 0


def _remove(args: argparse.Namespace) -> int:
    with _client(args) as api:
        api.request("DELETE", f"/v1/webhooks/{args.webhook_id}")
    print(f"removed {printable(args.webhook_id)} and its delivery records")
    return 0


def _deliveries(args: argparse.Namespace) -> int:
    params = {"state": args.state, "endpoint_id": args.webhook, "limit": args.limit}
    query = "&".join(f"{k}={v}" for k, v in params.items() if v)
    with _client(args) as api:
        items = api.get(f"/v1/webhook-deliveries?{query}" if query else "/v1/webhook-deliveries")["items"]
    for d in items:
        print(json.dumps(d) if args.json else delivery_line(d))
    return 0


def _redeliver(args: argparse.Namespace) -> int:
    with _client(args) as api:
        api.request("POST", f"/v1/webhooks/{args.webhook_id}/deliveries/{args.event_id}/redeliver")
    event, hook = printable(args.event_id), printable(args.webhook_id)
    print(f"{event}: queued again for {hook} with a fresh round of attempts")
    return 0


def _run(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from crisis.cli import output

        output.for_client_command()
        code: int = command(args)
        return code

    return run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", help=f"API base URL (env {API_URL_ENV}, default http://127.0.0.1:8000)")
    common.add_argument("--key", default=os.environ.get("CRISIS_KEY", ""), help="env CRISIS_KEY")
    hooks = sub.add_parser("webhooks", help="your organisation's signed webhooks").add_subparsers(
        dest="webhooks_command", required=True
    )
    listing = hooks.add_parser("list", parents=[common], help="your organisation's endpoints")
    listing.add_argument("--json", action="store_true", help="one JSON object a line")
    listing.set_defaults(run=_run(_list))

    add = hooks.add_parser("add", parents=[common], help="register an endpoint; prints its secret, once")
    add.add_argument("url")
    add.add_argument(
        "--type", action="append", required=True, choices=[t.value for t in EventType], help="repeatable"
    )
    add.add_argument("--mode", action="append", choices=[m.value for m in Mode], help="default: live")
    add.add_argument("--description", default="")
    add.set_defaults(run=_run(_add))

    remove = hooks.add_parser("remove", parents=[common], help="remove an endpoint and its delivery records")
    remove.add_argument("webhook_id")
    remove.set_defaults(run=_run(_remove))

    deliveries = hooks.add_parser("deliveries", parents=[common], help="deliveries, newest first")
    deliveries.add_argument("--state", choices=STATES, help="e.g. dead")
    deliveries.add_argument("--webhook", metavar="ID", help="one endpoint's only")
    deliveries.add_argument("--limit", type=int)
    deliveries.add_argument("--json", action="store_true", help="one JSON object a line")
    deliveries.set_defaults(run=_run(_deliveries))

    redeliver = hooks.add_parser("redeliver", parents=[common], help="send a delivery again (a dead letter)")
    redeliver.add_argument("webhook_id")
    redeliver.add_argument("event_id")
    redeliver.set_defaults(run=_run(_redeliver))

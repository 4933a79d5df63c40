"""``payflow tail TOPIC``: watch a topic's messages as they arrive, readably or as JSON lines.

For the teams consuming payflow's public topics (and for operators): one line per message —
time, type, merchant, subject and a short summary — or the message itself with ``--json``,
filtered by merchant and event type. It reads without a consumer group (all partitions, no
offsets committed), so it never disturbs real consumers; ``--limit`` stops it after N
messages and Ctrl-C at any time, cleanly.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer

from ingest.money import CURRENCY_EXPONENTS, Money
from ingest.topics import CATALOG, Visibility
from payflow.settings import get_settings

POLL_MS = 300
"""How long one poll waits: also the longest a Ctrl-C waits to be noticed."""


@dataclass(frozen=True, slots=True)
class Filters:
    merchant: str | None = None
    event_type: str | None = None
    """A type with its version (``payment.captured.v1``) or without (every version)."""

    def match(self, message: dict[str, Any]) -> bool:
        if self.merchant is not None and message.get("merchant_id") != self.merchant:
            return False
        if self.event_type is None:
            return True
        kind = str(message.get("type", ""))
        return self.event_type in (kind, kind.rsplit(".", 1)[0])


def tail(
    topic: Annotated[str, typer.Argument(
        help="A catalog topic, e.g. payments.events (the deployment's prefix is added)")],
    merchant: Annotated[str | None, typer.Option(
        "--merchant", help="Only this merchant's messages")] = None,
    event_type: Annotated[str | None, typer.Option(
        "--type", help="Only this type: payment.captured (any version) or "
                       "payment.captured.v1")] = None,
    from_beginning: Annotated[bool, typer.Option(
        "--from-beginning", help="Start at the oldest retained message (default: new only)")]
        = False,
    json_lines: Annotated[bool, typer.Option(
        "--json", help="Print each message as one line of JSON")] = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="Stop after printing this many messages")] = None,
) -> None:
    """Print a topic's messages as they arrive (Ctrl-C stops)."""
    catalog = {t.name: t for t in CATALOG}
    if topic not in catalog:
        public = ", ".join(t.name for t in CATALOG if t.visibility is Visibility.PUBLIC)
        raise typer.BadParameter(f"{topic!r} is not in the catalog; public topics: {public}",
                                 param_hint="TOPIC")
    settings = get_settings()
    name = catalog[topic].name_for(settings.topic_prefix)
    filters = Filters(merchant, event_type)
    try:
        code = asyncio.run(_follow(settings.kafka_bootstrap, name, from_beginning, limit,
                                   lambda raw: render(raw, filters, json_lines)))
    except BrokenPipeError:  # e.g. piped into `head`: the reader has gone, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    raise typer.Exit(code)


async def _follow(bootstrap: str, name: str, from_beginning: bool, limit: int | None,
                  line_of: Callable[[bytes | None], str | None]) -> int:
    """Print matching messages until ``limit`` or a signal; 0, or 2 if the topic is missing."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False,
                                auto_offset_reset="earliest" if from_beginning else "latest")
    await consumer.start()
    try:
        if name not in await consumer.topics():
            typer.secho(f"topic {name} does not exist on {bootstrap} (is PAYFLOW_TOPIC_PREFIX "
                        f"right?)", fg=typer.colors.RED, err=True)
            return 2
        consumer.subscribe([name])  # without a group: every partition, nothing committed
        printed = 0
        while not stop.is_set() and (limit is None or printed < limit):
            batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=500)
            # Merge partitions by timestamp, keeping each partition's (each key's) own order.
            for record in heapq.merge(*batches.values(), key=lambda r: r.timestamp):
                line = line_of(record.value)
                if line is not None:
                    print(line, flush=True)
                    printed += 1
                if limit is not None and printed >= limit:
                    break
        return 0
    finally:
        await consumer.stop()


def render(raw: bytes | None, filters: Filters, as_json: bool) -> str | None:
    """The line to print for one message value, or None when the filters leave it out."""
    try:
        message = json.loads(raw or b"")
    except ValueError:
        message = None
    if not isinstance(message, dict):
        if filters.merchant or filters.event_type:
            return None
        return json.dumps({"undecodable": (raw or b"")[:500].decode(errors="replace")})
    if not filters.match(message):
        return None
    if as_json:
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    return readable(message)


def readable(message: dict[str, Any]) -> str:
    """``time  type  merchant  subject  summary`` for one message."""
    return "  ".join([_time(message.get("time")), f"{message.get('type', '-'):<22}",
                      str(message.get("merchant_id", "-")), str(message.get("subject", "-")),
                      summary(message)])


def summary(message: dict[str, Any]) -> str:
    """A few words on what the message says, by its event name."""
    data = message.get("data")
    if not isinstance(data, dict):
        return ""
    name = str(message.get("type", "")).rsplit(".", 1)[0]
    money = _money(data.get("amount"), data.get("currency"))
    if name == "payment.decided":
        flags = "; ".join(data.get("fraud_flags") or ())
        return " ".join(part for part in (
            str(data.get("outcome")), f"score={data.get('fraud_score')}",
            f"risk={data.get('risk_level')}", f"model={data.get('model_version')}",
            "degraded" if data.get("degraded") else "", f"flags: {flags}" if flags else "",
        ) if part)
    if name.startswith("payment."):
        parts = [str(data.get("status")), money]
        for field in ("captured_amount", "refunded_amount", "disputed_amount"):
            if data.get(field):
                parts.append(f"{field.split('_')[0]} {_money(data[field], data.get('currency'))}")
        if data.get("decline_code"):
            parts.append(f"declined: {data['decline_code']}")
        return " ".join(parts)
    if name in ("refund.created", "dispute.created"):
        reason = f" reason={data['reason']}" if data.get("reason") else ""
        return f"{name.split('.')[0]} {data.get('id')} {money}{reason}"
    if name.startswith("payout."):
        return (f"payout {data.get('id')} {money} {data.get('status')} "
                f"(settlement {data.get('settlement_date')})")
    return ", ".join(sorted(data))[:100]


def _money(amount: Any, currency: Any) -> str:
    if isinstance(amount, int) and not isinstance(amount, bool) and currency in CURRENCY_EXPONENTS:
        return str(Money(amount, str(currency)))
    return f"{amount} {currency}"


def _time(value: Any) -> str:
    try:
        moment = datetime.fromisoformat(str(value)).astimezone(UTC)
    except ValueError:
        return str(value or "-")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

"""The envelope every message shares, and strict decoding of bytes into contracts.

Every message has CloudEvents-style fields: ``id`` (unique per message; the idempotency key for
whoever consumes it), ``type`` (name and schema version, ``payment.requested.v1``), ``source``
(the producing process), ``time`` (event time, UTC), ``merchant_id`` and ``subject`` (the
entity it is about, also its Kafka key) — and ``data``, the typed payload. Models are frozen and
reject unknown fields; an incompatible change goes into a new version.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from ingest.money import MAX_AMOUNT_MINOR

AmountMinor = Annotated[int, Field(ge=1, le=MAX_AMOUNT_MINOR, strict=True)]
"""A positive amount in integer minor units (cents; yen for JPY)."""
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


_UUID4_CLEAR = (0xF000 << 64) | (0xC000 << 48)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_message_id() -> str:
    """A fresh message id: a random (version 4, RFC 4122) UUID in hex, like
    ``uuid.uuid4().hex`` but a third of its cost."""
    return new_message_ids(1)[0]


def new_message_ids(count: int) -> list[str]:
    """``count`` fresh message ids from one read of the system's randomness (the worker makes
    one per decision: 0.65 µs each in a batch of 500, against 1.1 µs one by one)."""
    random = os.urandom(16 * count)
    return [f"{int.from_bytes(random[at:at + 16]) & ~_UUID4_CLEAR | _UUID4_SET:032x}"
            for at in range(0, 16 * count, 16)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """Base of every payload and envelope: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Message(Contract):
    """The envelope every topic message shares."""

    id: str = Field(default_factory=new_message_id)
    """Unique per message; a redelivered or re-published message keeps it (deduplicate on it)."""
    type: str
    """The message's name and schema version, e.g. ``payment.captured.v1``."""
    source: str
    """The producing process, e.g. ``payflow/ledger``."""
    time: AwareDatetime = Field(default_factory=utc_now)
    """When it happened (event time), with its UTC offset."""
    merchant_id: str
    """The merchant it belongs to."""
    subject: str
    """The entity the message is about (a payment id); also its Kafka key."""

    def key(self) -> bytes:
        return self.subject.encode()

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @property
    def event_name(self) -> str:
        """The type without its version suffix (``payment.captured``): the webhook type."""
        return self.type.rsplit(".", 1)[0]


class UndecodableMessage(ValueError):
    """Bytes that are not a valid message of the expected contract (a poison message)."""


def decode_with(adapter: TypeAdapter[Any], raw: bytes | None) -> Any:
    """Validate ``raw`` JSON with ``adapter``; UndecodableMessage on any failure."""
    if raw is None:
        raise UndecodableMessage("empty message value")
    try:
        return adapter.validate_json(raw)
    except ValueError as error:
        raise UndecodableMessage(str(error)[:500]) from error

"""The risk engine's tables: one compact record per card, origin, customer and merchant.

Each value is the entity's JSON-encoded record (``models.features``), all of its windows in one
value, so an event costs one table write (one changelog message) per stage. The changelog
topics are in the catalog (``ingest.topics.RISK_TABLE_CHANGELOGS``), created with the others;
partitions match the stage topic each table is updated from.

The stages read and write a table's local RocksDB databases directly, by partition
(``PartitionStore``), and send its changelog messages themselves (``streams.agents.append``);
Faust still owns the changelog topics, recovery from them, and partition assignment.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import faust
from rocksdict import WriteBatch

from ingest.topics import RISK_CARDS, RISK_CUSTOMERS, RISK_MERCHANTS, RISK_ORIGINS, Topic

STORE_OPTIONS: dict[str, int] = {
    "write_buffer_size": 4 * 1024**2,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 * 1024**2,
}
"""RocksDB options of each partition's database: a worker holds 24 (4 tables x 6 partitions).
Faust's defaults (three 64 MiB write buffers, a 2 GiB block cache) bound one worker's memory
only at several GiB, and a write buffer holds every record written to its partition until it
is flushed. In the 10-minute soak at 10 payments/s the worker grew steadily by about 4 KiB a
payment, about its four table records, which at that rate no 64 MiB buffer flushes (likely the
cause, not verified). These bound the write buffers at 8 MiB and the caches at 16 MiB a
database (under 600 MiB for the 24); records are a few hundred bytes, so a flush still writes
thousands at once."""


@dataclass(frozen=True)
class RiskTables:
    cards: Any
    origins: Any
    customers: Any
    merchants: Any

    @classmethod
    def create(cls, app: faust.App) -> RiskTables:
        def table(name: str, source: Topic) -> Any:
            return app.Table(
                name, key_type=bytes, value_type=bytes, partitions=source.partitions,
                help=f"risk feature records, updated from {source.name}",
                options=dict(STORE_OPTIONS),
            )

        return cls(
            cards=table("card-state", RISK_CARDS),
            origins=table("origin-state", RISK_ORIGINS),
            customers=table("customer-state", RISK_CUSTOMERS),
            merchants=table("merchant-state", RISK_MERCHANTS),
        )


class PartitionStore:
    """A table's local store, one RocksDB database per partition, addressed by partition.

    Faust's table API (``table[key]``) finds the partition from the *current event*, which
    inside ``take()`` batches is one event for the whole batch: a key of another partition
    reads back empty and is written to the wrong one (performance-facts.md). It also reads
    every key twice (``in``, then ``[]``). The stages know each key's partition (a bundle's
    items all share its partition), so they say it. This uses Faust's RocksDB store internals
    (``_db_for_partition``, ``offset_key``), pinned with faust-streaming itself.
    """

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self.table.data._db_for_partition(partition).get(key)
        return value

    def write(self, partition: int, items: Iterable[tuple[bytes, bytes]],
              offset: int | None) -> None:
        """Write ``items`` and, if given, the changelog ``offset`` they reach (where Faust's
        recovery starts reading: ``Store.set_persisted_offset``) in one RocksDB write batch,
        as Faust's own changelog recovery writes (``Store.apply_changelog_batch``)."""
        batch = WriteBatch(raw_mode=True)
        for key, value in items:
            batch.put(key, value)
        if offset is not None:
            batch.put(self.table.data.offset_key, str(offset).encode())
        self.table.data._db_for_partition(partition).write(batch)


class Store(Protocol):
    def get(self, partition: int, key: bytes) -> bytes | None: ...

    def write(self, partition: int, items: Iterable[tuple[bytes, bytes]],
              offset: int | None) -> None: ...


WRITE_BEHIND_SECONDS = 1.0
"""How long a table's records wait before they are written to its local RocksDB."""
WRITE_BEHIND_RECORDS = 20_000
"""Records held at most (a few MiB): more are written at once."""


class WriteBehind:
    """A table's local writes, held back and written to RocksDB about once a second, with the
    changelog offset they reach, in one write batch per partition.

    At 1,000 payments/s the worker's batches hold a few requests each, and each batch wrote
    up to 24 partitions' databases (4 tables x 6 partitions), then a persisted offset for each
    once Kafka acknowledged it: thousands of RocksDB writes a second, 14 % of the worker's
    samples in a profile (py-spy). The local store is a cache of the changelog, which holds
    every record sent, so it may lag behind it as long as what it holds is consistent:

    - a record is readable here from the moment it is held (``get`` looks here first);
    - an offset is held only once Kafka has acknowledged the changelog messages up to it, and
      those values were held before they were sent, so an offset is never written before
      the values it covers: after a crash, recovery replays the changelog from the last
      offset written, over values at least that new;
    - when Faust revokes partitions (``revoked``, before it recovers any table partition),
      everything held is written, and acknowledgements of messages sent before then no
      longer count: a recovery writes newer values and offsets that these must not undo.
    """

    def __init__(self, store: Store, changelog: str = "", seconds: float = WRITE_BEHIND_SECONDS,
                 records: int = WRITE_BEHIND_RECORDS) -> None:
        self.store, self.changelog = store, changelog
        """The table's changelog topic (where its records are sent)."""
        self.seconds, self.records = seconds, records
        self.values: dict[int, dict[bytes, bytes]] = {}
        self.offsets: dict[int, int] = {}
        self.held = 0
        self.since = time.monotonic()
        self.generation = 0
        """Bumped by ``revoked``: acknowledgements of an older generation are ignored."""

    def get(self, partition: int, key: bytes) -> bytes | None:
        held = self.values.get(partition)
        value = None if held is None else held.get(key)
        return self.store.get(partition, key) if value is None else value

    def hold(self, writes: Iterable[tuple[int, bytes, bytes]]) -> None:
        """Hold (partition, key, value) records for the local store, the newest per key."""
        values = self.values
        for partition, key, value in writes:
            held = values.get(partition)
            if held is None:
                held = values[partition] = {}
            if key not in held:
                self.held += 1
            held[key] = value

    def acknowledged(self, partition: int, offset: int, generation: int) -> None:
        """Kafka has every changelog message of ``partition`` up to ``offset``, sent in
        ``generation``."""
        if generation == self.generation:
            self.offsets[partition] = max(offset, self.offsets.get(partition, -1))

    def write_if_due(self) -> None:
        if self.held >= self.records or time.monotonic() - self.since >= self.seconds:
            self.write()

    def write(self) -> None:
        """Write every partition's held values and newest acknowledged offset."""
        for partition in self.values.keys() | self.offsets.keys():
            self.store.write(partition, self.values.get(partition, {}).items(),
                             self.offsets.get(partition))
        self.values, self.offsets, self.held = {}, {}, 0
        self.since = time.monotonic()

    def revoked(self) -> None:
        self.write()
        self.generation += 1


@dataclass(frozen=True)
class RiskStores:
    """Each risk table's ``WriteBehind``, one per table for the whole worker: every agent's
    batches read what the others' hold."""

    cards: WriteBehind
    origins: WriteBehind
    customers: WriteBehind
    merchants: WriteBehind

    @classmethod
    def of(cls, tables: RiskTables) -> RiskStores:
        return cls(*(WriteBehind(PartitionStore(table), table.changelog_topic.get_topic_name())
                     for table in (tables.cards, tables.origins, tables.customers,
                                   tables.merchants)))

    def every(self) -> tuple[WriteBehind, ...]:
        return self.cards, self.origins, self.customers, self.merchants

    def write_if_due(self) -> None:
        for store in self.every():
            store.write_if_due()

    def revoked(self) -> None:
        """Faust revokes partitions (a rebalance starts): write everything held."""
        for store in self.every():
            store.revoked()

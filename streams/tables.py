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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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
    (``_db_for_partition``), pinned with faust-streaming itself.
    """

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self.table.data._db_for_partition(partition).get(key)
        return value

    def put_many(self, partition: int, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Write ``items`` in one RocksDB write batch, as Faust's own changelog recovery does
        (``Store.apply_changelog_batch``): about half the CPU of one ``put`` per key."""
        batch = WriteBatch(raw_mode=True)
        for key, value in items:
            batch.put(key, value)
        self.table.data._db_for_partition(partition).write(batch)

"""The risk engine's tables: one compact record per card, origin, customer and merchant.

Each value is the entity's JSON-encoded record (``models.features``), all of its windows in one
value, so an event costs one table write (one changelog message) per stage. The changelog
topics are in the catalog (``ingest.topics.RISK_TABLE_CHANGELOGS``), created with the others;
partitions match the stage topic each table is updated from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from ingest.topics import RISK_CARDS, RISK_CUSTOMERS, RISK_MERCHANTS, RISK_ORIGINS, Topic


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
            )

        return cls(
            cards=table("card-state", RISK_CARDS),
            origins=table("origin-state", RISK_ORIGINS),
            customers=table("customer-state", RISK_CUSTOMERS),
            merchants=table("merchant-state", RISK_MERCHANTS),
        )

"""What routes need, as nouns: ``ServicesDep``, ``MerchantId``, ``IdempotencyKey``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from api.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_merchant_id(request: Request) -> str:
    merchant_id: str = request.state.merchant_id  # set by api.auth.ApiKeyAuth
    return merchant_id


ServicesDep = Annotated[Services, Depends(get_services)]
MerchantId = Annotated[str, Depends(get_merchant_id)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retries with the same key and body replay the first answer (kept 24 h).",
    ),
]

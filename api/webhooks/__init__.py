"""Webhooks: merchants' endpoints and their API (``/v1/webhook_endpoints``, ``/api/webhooks``),
and the sender that delivers public events to them (``payflow webhooks``, ``sender/``).

Pure rules — which events an endpoint gets and the body it receives (``events``), the retry
schedule and auto-disable policy (``schedule``), which URLs are acceptable (``urls``) — are kept
apart from the I/O that applies them. Signing lives in ``ingest.webhook_signature`` so merchants
can verify with the same code.
"""

"""The published contract of payflow's public Kafka topics, as files: docs/topics.md, one JSON
Schema per event type under schemas/, and asyncapi.yaml — all generated from the topic catalog
(``ingest.topics``) and the pydantic contracts (``ingest.contracts``) by
``payflow contracts generate``, and checked by the test suite for staleness and compatibility.
"""

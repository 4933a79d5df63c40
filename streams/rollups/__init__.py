"""Analytics rollups: the materialized tables the dashboard reads (``payflow analytics``).

``model`` turns public events and risk decisions into per-bucket measures (pure); ``store``
writes them to PostgreSQL; ``consumer`` is the deployable that ties them to Kafka.
"""

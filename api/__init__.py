"""FastAPI: the merchant ``/v1`` API and the dashboard's ``/api`` backend."""

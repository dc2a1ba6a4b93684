"""The REST API under ``/api/v1/``: thin views over the trace engine's services and reads."""

"""EPCIS 2.0 over HTTP: capture and query exactly as the standard's OpenAPI document defines them."""

"""GS1 EPCIS 2.0: documents in (capture, import), events stored and queried, the genealogy derived.

``standard/`` holds GS1's own artefacts the interface is checked against (JSON schema, JSON-LD
context, XSDs), copied unchanged from the gs1/EPCIS repository; see ``standard/SOURCE.md``.
"""

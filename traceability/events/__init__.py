"""GS1 EPCIS 2.0 events, the domain: documents in (capture, import; JSON, XML and CSV), events stored
and queried, the genealogy derived. Its HTTP interface is ``traceability.epcis``.

``standard/`` holds GS1's own artefacts the interface is checked against (JSON schema, JSON-LD
context, XSDs), copied unchanged from the gs1/EPCIS repository; see ``standard/SOURCE.md``.
"""

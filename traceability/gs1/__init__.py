"""GS1's identifiers (SGTIN, LGTIN, SSCC, SGLN, PGLN as EPC URNs and Digital Links), the Tag Data
Standard's grammar, check-digit keys and the CBV vocabulary. Pure Python: no database."""

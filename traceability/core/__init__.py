"""The lowest layer: database helpers (the one place for dialect differences and COPY), background
jobs, file storage and the domain's typed errors. It imports no other part of the product."""

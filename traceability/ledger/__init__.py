"""The ledger: the position every write takes, company prefixes, and finding a subject by identifier."""

"""The product's web pages: sign-in, the desk, search, a unit's and a lot's story, the audit of a
regulator's own reads. An interface like ``api`` and ``gql``: it asks ``traceability.access`` who
the caller is and what it may open, and renders the domain's read models."""

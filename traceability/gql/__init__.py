"""The regulators' GraphQL API at ``/graphql/`` (graphene, Relay): one module per domain for its
types, resolvers and mutations (``parties``, ``lots``, ``units``, ``investigations``); ``schema``
only composes them, ``protection`` bounds what one query may ask, ``views`` speaks HTTP.

Like every interface it asks the domain: the access policy (``traceability.access``) for who sees
what, and the read models the REST API renders (``genealogy.read_models``, the investigations'
selectors) for the answers. It never imports another interface (import-linter holds it).
"""

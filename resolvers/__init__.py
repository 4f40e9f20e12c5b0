"""Floor 3: the graph's resolvers, DataLoaders and per-request context.

Resolvers answer in domain terms (``StoredCase``, ``Region`` …); ``schema/`` wraps them in GraphQL types.
"""

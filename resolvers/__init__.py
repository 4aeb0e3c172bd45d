"""The GraphQL API: resolvers, per-request loaders, auth, limits and the Starlette app serving the schema."""

"""The GraphQL schema: strawberry types, inputs and enums, and the exported SDL in schema.graphql."""

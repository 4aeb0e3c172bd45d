"""Domain model and the encrypted dialogue store over SQLite or DynamoDB; imports nothing else of Concord's."""

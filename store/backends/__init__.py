"""Storage backends that hold sealed items: the shared contract, SQLite and DynamoDB."""

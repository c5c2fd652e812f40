"""Message search: the query (query.py) and the index of each database (schema.py)."""

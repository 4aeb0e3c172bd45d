"""The API server's composition root: the uvicorn workers and the dialogue starter they run."""

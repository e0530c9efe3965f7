"""gRPC transport between the coordinator and workers (not built yet)."""

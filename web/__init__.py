"""The Starlette app: REST API, auth, metrics and UI (not built yet)."""

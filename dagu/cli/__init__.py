"""Command-line interface: one module per command; `main` is the composition root."""

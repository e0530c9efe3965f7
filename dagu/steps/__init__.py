"""Step types: one module each, found through `dagu.steps.registry` and imported on first use."""

"""Run notifications sent from inside the run process (dag-spec 2, service.md 7.4): e-mail only."""

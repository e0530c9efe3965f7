"""How actor messages cross a process or machine boundary (in-process now, gRPC later)."""

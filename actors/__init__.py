"""The actor runtime: supervisors, the DAG-run and step actors, and their messages."""

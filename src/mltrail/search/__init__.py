"""Search language for runs and experiments: one parser, an in-memory and a SQL back end."""

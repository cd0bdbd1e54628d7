"""Side-by-side benchmarks of mltrail against MLflow (``python -m bench``). Not tests: nothing here asserts times."""

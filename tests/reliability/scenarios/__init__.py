"""Reliability scenarios, one module each. One test per scenario (tests/reliability/test_*.py)
runs each at two sizes: ``short`` in ``make test``, ``long`` (marked chaos) in ``make chaos``,
which also runs tests/reliability/test_replay_large_dlq.py. Each scenario function takes its
size as arguments, asserts nothing itself and returns a ``ScenarioResult`` plus the raw numbers;
the callers record the result and then assert. Docs: docs/reliability.md.
"""

"""Hypothesis for tests/oee: no example database on disk (runs leave nothing behind), no per-example deadline
(timing on a loaded CI machine is not what these tests check)."""
from hypothesis import settings

settings.register_profile("oee", database=None, deadline=None, max_examples=100)
settings.load_profile("oee")

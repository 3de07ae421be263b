"""Test oracles: plain transcriptions of the equations, kept out of the installed package.

``tests/`` is on ``sys.path`` under pytest (its ``conftest.py``), so tests import
``from oracles import reference``; the benchmarks that time against the oracles put
``tests/`` on the path themselves.
"""

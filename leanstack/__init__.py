"""leanstack's offline tooling: plan, schema (and later diff, cost, runbook).

Run `python -m leanstack --help`.
"""

"""The host agent: the programs leanstack runs on the host (leanstack-backup, leanstack-restore,
leanstack-restore-drill, leanstack-app, leanstack-seal-secrets, leanstack-credentials).

Python 3.9, the standard library and boto3 (as Amazon Linux 2023 ships them); modules import
each other relatively and nothing else of leanstack's, so the same files run on the host as
the package `leanstack_agent` (shipped as text, sha256-checked, see `leanstack.host.boot`) and
are read by the laptop side as `leanstack.host.agent`. `contract` states the names and paths
both sides use.
"""

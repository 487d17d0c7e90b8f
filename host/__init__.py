"""What runs on the proxy host: nginx, cloud-init, backup and restore-drill tools.

Everything here is plain Python with no Pulumi import, so the rendered files can be
tested with the real programs (nginx, cloud-init, PostgreSQL) on any machine.
"""

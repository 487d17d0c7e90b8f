"""What the tests and the benchmarks share: loopback servers (PostgreSQL, a TCP proxy), an nginx
harness, and the system-package helper. Not part of the installed library; bench/ imports this
instead of importing tests."""

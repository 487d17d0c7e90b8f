"""The box: the stack's host booted whole from its real rendered user data, on this machine.

`python -m support.box up [--stack dev]` (what `make box` runs) renders the stack's user data
with the real Pulumi program under mocks, builds (or reuses) a Debian bookworm image that
boots systemd as PID 1, seeds cloud-init's NoCloud datasource with that user data, starts the
box in Docker, deploys a first release of a small real app image through the box's own
registry, and writes build/box/box.env. `down` removes the box. See docs/contributing.md, "The box".

- `packages`: AL2023 package names -> Debian's, in one table.
- `image`: the box image and the app image, cached under build/box/ and keyed by their inputs.
- `render`: the user data, what the box changes in it (listed there), and moto's seed.
- `run`: starting, waiting for and stopping the box; box.env.
"""

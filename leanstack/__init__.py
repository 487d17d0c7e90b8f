"""leanstack: Pulumi components for a lean single-region stack, and the tooling around them.

The package holds the library and the tools, one room each:

- `leanstack.components`: the Pulumi components and their Args (the library);
- `leanstack.config`: the config model (Pulumi-free), which the components and the tools both read;
- `leanstack.host`: what runs on the host (nginx, cloud-init, the backup and deploy tools);
- `leanstack.policy`: the CrossGuard policy pack's rules;
- the tooling modules here: plan, diff, cost, runbook, deploy, init and the CLI
  (`python -m leanstack`, which prints its commands).
"""

__version__ = "0.1.0"

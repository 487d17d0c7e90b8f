"""Read the stack's config from the Pulumi runtime as a plain dict.

Pulumi has no API that lists every config key, so this merges the two places the
language host puts them: the process-wide PULUMI_CONFIG JSON and keys set in-process.
"""

from __future__ import annotations

from typing import Any

from pulumi.runtime import config as runtime_config


def raw_stack_config() -> dict[str, Any]:
    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return raw

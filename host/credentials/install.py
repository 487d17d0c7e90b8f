"""The host files of the app's credentials endpoint, for cloud-init to write.

`credentials_host_files(role_arn, region)` returns the endpoint program, its environment
file (no secrets: the token is made on the host) and its systemd service; cloud-init
enables `CREDENTIALS_UNITS`. The app's container then gets `container_environment()`
plus AWS_CONTAINER_AUTHORIZATION_TOKEN read from `TOKEN_PATH` (root-readable only).

What the host role needs: sts:AssumeRole on the app's role, and the app's role must
trust the host role (its trust policy names the host role's ARN as principal).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from string import Template

from leanstack.host.agent import contract
from leanstack.host.agent.credentials import DEFAULT_ADDRESS, DEFAULT_PATH, DEFAULT_PORT
from leanstack.host.params import HostFile
from leanstack.host.shipping import entry_file

HERE = Path(__file__).resolve().parent

CREDENTIALS_TOOL_PATH = contract.CREDENTIALS_COMMAND.path
CREDENTIALS_ENV_PATH = contract.CREDENTIALS_ENV_PATH
TOKEN_PATH = contract.CREDENTIALS_TOKEN_PATH
CREDENTIALS_UNITS: tuple[str, ...] = (contract.CREDENTIALS_SERVICE,)
# The link-local addresses the SDKs accept in a plain-http FULL_URI besides loopback.
SDK_LINK_LOCAL = ("169.254.170.2", "169.254.170.23")

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


def container_environment(address: str = DEFAULT_ADDRESS) -> dict[str, str]:
    """What the app's container is given, besides the token."""
    return {"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://{address}:{DEFAULT_PORT}{DEFAULT_PATH}"}


def credentials_tool() -> HostFile:
    """leanstack-credentials' entry script (its code, the agent's modules, travels through the host-files bucket)."""
    return entry_file(contract.CREDENTIALS_COMMAND)


def credentials_host_files(role_arn: str, region: str, address: str = DEFAULT_ADDRESS) -> tuple[HostFile, ...]:
    if not _ROLE_ARN.match(role_arn):
        raise ValueError(f"role_arn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME), not {role_arn!r}")
    if not _REGION.match(region):
        raise ValueError(f"region must be an AWS region such as eu-west-1, not {region!r}")
    if address not in SDK_LINK_LOCAL and not ipaddress.ip_address(address).is_loopback:
        raise ValueError(
            f"address must be loopback or one of {', '.join(SDK_LINK_LOCAL)} (the SDKs refuse others), not {address!r}"
        )
    # A link-local address is added to the host's loopback device before the endpoint binds
    # it ('+': as root, the endpoint itself runs unprivileged).
    address_step = (
        f"ExecStartPre=+/usr/sbin/ip address replace {address}/32 dev lo\n" if address in SDK_LINK_LOCAL else ""
    )
    unit = Template((HERE / "templates" / "leanstack-credentials.service.in").read_text(encoding="utf-8"))
    env = "\n".join(
        [
            "# leanstack-credentials settings, rendered from the stack. No secrets.",
            f'APP_ROLE_ARN="{role_arn}"',
            f'AWS_REGION="{region}"',
            f'LISTEN_ADDRESS="{address}"',
            f'LISTEN_PORT="{DEFAULT_PORT}"',
            f'TOKEN_FILE="{TOKEN_PATH}"',
            "",
        ]
    )
    return (
        credentials_tool(),
        HostFile(path=CREDENTIALS_ENV_PATH, content=env, permissions="0644"),
        HostFile(
            path=f"{contract.UNIT_DIR}/{contract.CREDENTIALS_SERVICE}",
            content=unit.substitute(address_step=address_step),
        ),
    )

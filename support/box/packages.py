"""The one table from Amazon Linux 2023's package names (what the rendered user data asks
cloud-init to install) to the Debian bookworm packages the box installs instead.

The box's image is built from these Debian packages, and the user data it boots has its
`packages:` list rewritten through this table, so cloud-init's own package step runs (and
finds everything installed). A name missing here stops `make box` with its name, so a
package added to the host is mapped on purpose, never skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

# AL2023 name -> Debian packages; an empty tuple means the box runs a stand-in (see STAND_INS).
DEBIAN_PACKAGES: dict[str, tuple[str, ...]] = {
    "nginx": ("nginx",),
    # Not in Debian: the box runs a stand-in ctl and unit (support/box/rootfs/opt/aws/...).
    "amazon-cloudwatch-agent": (),
    # AL2023 puts initdb, pg_ctl and postgres on PATH; the image links Debian's there too.
    "postgresql17": ("postgresql-client-15",),
    "postgresql17-server": ("postgresql-15",),
    # Debian's is 1.26, older than AWS_ENDPOINT_URL (1.28): the image adds a newer boto3 in
    # /usr/local (PIP_PACKAGES) that the host tools import first.
    "python3-boto3": ("python3-boto3",),
    "docker": ("docker.io",),
    "amazon-ecr-credential-helper": ("amazon-ecr-credential-helper",),
}

# What stands in for the AWS side and the host's base system, not part of the rendered host.
BOX_PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    # AL2023 resolves DynamicUser= users through nss-systemd (initdb in the drill looks its user up).
    "libnss-systemd",
    "cloud-init",
    "python3",
    "openssl",
    "ssl-cert",
    "sudo",
    "curl",
    "ca-certificates",
    "iproute2",
    "iptables",
    "procps",
    "less",
    # The local registry standing in for ECR.
    "docker-registry",
    # The aws CLI (AL2023 ships v2); Debian's awscli is too old for AWS_ENDPOINT_URL, see PIP_PACKAGES.
    "groff-base",
    # What pip's boto3 and aws CLI import from Debian (DEBIAN_HAS).
    "python3-yaml",
    "python3-docutils",
    "python3-colorama",
    "python3-rsa",
    "python3-dateutil",
    "python3-jmespath",
    "python3-urllib3",
    "python3-six",
)

# Installed from PyPI into the image's /usr/local: boto3 >= 1.28 and the aws CLI v1 >= 1.29 read
# AWS_ENDPOINT_URL, which points every AWS call of the host at moto.
PIP_PACKAGES: tuple[str, ...] = ("boto3>=1.28", "awscli>=1.29")
# Their dependencies that stay Debian's (import names): pip's copies are removed again.
DEBIAN_HAS: tuple[str, ...] = (
    "urllib3",
    "yaml",
    "_yaml",
    "PyYAML",
    "pyyaml",
    "docutils",
    "colorama",
    "rsa",
    "pyasn1",
    "dateutil",
    "python_dateutil",
    "six",
    "jmespath",
)

STAND_INS = {
    "amazon-cloudwatch-agent": "a ctl that checks its JSON config and a unit that only stays active",
}


class UnmappedPackage(ValueError):
    """A package the host asks for that this table does not map."""


def debian_packages(al2023: Iterable[str]) -> list[str]:
    """The Debian packages for `al2023`'s names, in order, each once; refuses an unmapped name."""
    out: list[str] = []
    for name in al2023:
        if name not in DEBIAN_PACKAGES:
            raise UnmappedPackage(
                f"package {name!r} has no Debian counterpart in support/box/packages.py DEBIAN_PACKAGES; add one"
            )
        out += [p for p in DEBIAN_PACKAGES[name] if p not in out]
    return out


def image_packages() -> list[str]:
    """Everything the box's image installs: every mapped host package and the stand-ins' own."""
    return list(dict.fromkeys([*debian_packages(DEBIAN_PACKAGES), *BOX_PACKAGES]))

"""Encryption at rest and in transit: the database, the cache, the hosts' volumes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from leanstack.policy.rules.resource_types import CACHE_GROUP, EBS_VOLUME, INSTANCE, LAUNCH_TEMPLATE, RDS, RDS_CLUSTER
from leanstack.policy.rules.view import Rule, StackView, Subject, as_list, known


def _rds_encrypted(db: Subject, view: StackView) -> Iterator[str]:
    if db.get("storageEncrypted") is not True and known(db.get("storageEncrypted")):
        yield f"{db.name} stores data unencrypted; set storage_encrypted=True (forces a new database: restore into it)"


def _cache_encrypted(cache: Subject, view: StackView) -> Iterator[str]:
    for prop, what, arg in (
        ("atRestEncryptionEnabled", "at rest", "at_rest_encryption_enabled"),
        ("transitEncryptionEnabled", "in transit", "transit_encryption_enabled"),
    ):
        value = cache.get(prop)
        if known(value) and value is not True:
            yield f"{cache.name} is not encrypted {what}; set {arg}=True"


def _ebs_encrypted(subject: Subject, view: StackView) -> Iterator[str]:
    if subject.type == EBS_VOLUME:
        if known(subject.get("encrypted")) and subject.get("encrypted") is not True:
            yield f"{subject.name} is an unencrypted EBS volume; set encrypted=True"
        return
    if subject.type == LAUNCH_TEMPLATE:
        yield from _launch_template_encrypted(subject)
        return
    root = subject.get("rootBlockDevice")
    if not isinstance(root, Mapping) or (known(root.get("encrypted")) and root.get("encrypted") is not True):
        yield f"{subject.name}'s root volume is not encrypted; set root_block_device.encrypted=True"
    for device in as_list(subject.get("ebsBlockDevices")):
        if isinstance(device, Mapping) and known(device.get("encrypted")) and device.get("encrypted") is not True:
            yield f"{subject.name}'s EBS volume {device.get('deviceName', '?')} is not encrypted; set encrypted=True"


def _launch_template_encrypted(template: Subject) -> Iterator[str]:
    """A launch template states its volumes' encryption per block device, as "true"/"false" strings."""
    mappings = [m for m in as_list(template.get("blockDeviceMappings")) if isinstance(m, Mapping)]
    if not mappings and known(template.get("blockDeviceMappings")):
        yield (
            f"{template.name} launches hosts with the AMI's root volume, encrypted only if the AMI's is; "
            "add block_device_mappings with ebs.encrypted=true"
        )
    for mapping in mappings:
        ebs = mapping.get("ebs")
        encrypted = ebs.get("encrypted") if isinstance(ebs, Mapping) else None
        if known(encrypted) and str(encrypted).lower() != "true":
            yield (
                f"{template.name}'s EBS volume {mapping.get('deviceName', '?')} is not encrypted; "
                "set ebs.encrypted=true"
            )


RDS_STORAGE_ENCRYPTED = Rule(
    "rds-storage-encrypted", "RDS storage is encrypted at rest.", (RDS, RDS_CLUSTER), _rds_encrypted
)
CACHE_ENCRYPTED = Rule(
    "cache-encrypted",
    "ElastiCache is encrypted at rest and in transit.",
    (CACHE_GROUP,),
    _cache_encrypted,
)
EBS_ENCRYPTED = Rule(
    "ebs-encrypted",
    "EC2 root and EBS volumes, and those launch templates create, are encrypted.",
    (INSTANCE, EBS_VOLUME, LAUNCH_TEMPLATE),
    _ebs_encrypted,
)

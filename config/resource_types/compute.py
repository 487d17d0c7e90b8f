"""Compute: the host, the scaled hosts' template and group, its address and its image registry."""

from __future__ import annotations

from typing import Any

from leanstack.config.resource_types.model import (
    COMPUTE,
    MOCK_ACCOUNT,
    SHRINK,
    Facts,
    MockCall,
    ResourceType,
    digest,
    m,
    names,
)


def _ec2_instance(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    return "i-0" + digest(call.token, call.name, length=16), {"privateIp": "10.20.0.10"}


def _elastic_ip(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    allocation = "eipalloc-0" + digest(call.token, call.name, length=16)
    # 203.0.113.0/24 is TEST-NET-3: never a real host.
    address = f"203.0.113.{int(digest(call.name, length=2), 16) % 250 + 1}"
    return allocation, {"publicIp": address, "allocationId": allocation}


def _launch_template(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    return "lt-0" + digest(call.token, call.name, length=16), {"latestVersion": 1, "defaultVersion": 1}


def _autoscaling_group(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    name = call.inputs.get("name") or f"{call.inputs.get('namePrefix', call.name)}{digest(call.name, length=12)}"
    arn = f"arn:aws:autoscaling:{call.region}:{MOCK_ACCOUNT}:autoScalingGroup:{call.name}"
    return name, {"name": name, "arn": arn}


def _ecr_repository(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    repo = call.inputs.get("name", call.name)
    return repo, {
        "arn": f"arn:aws:ecr:{call.region}:{MOCK_ACCOUNT}:repository/{repo}",
        "repositoryUrl": f"{MOCK_ACCOUNT}.dkr.ecr.{call.region}.amazonaws.com/{repo}",
        "name": repo,
    }


EC2_INSTANCE = ResourceType(
    "aws:ec2/instance:Instance",
    (COMPUTE,),
    facts=Facts(
        "host",
        "EC2: ami, subnet, AZ, key pair and private IP are fixed at launch (ForceNew); instance type and "
        "EBS-optimized change only on a stopped instance, so the provider stops and starts it; user data "
        "changes stop/start the instance, or replace it with userDataReplaceOnChange; an EBS volume grows "
        "online and can never shrink.",
        replaces=frozenset(
            {
                "ami",
                "availabilityZone",
                "subnetId",
                "keyName",
                "privateIp",
                "placementGroup",
                "tenancy",
                "rootBlockDevice.encrypted",
                "rootBlockDevice.kmsKeyId",
                "launchTemplate",
            }
        ),
        replaces_if=m(userData="userDataReplaceOnChange", userDataBase64="userDataReplaceOnChange"),
        in_place=m(
            instanceType="the host is stopped and started to change its type (a few minutes offline)",
            ebsOptimized="the host is stopped and started (a few minutes offline)",
            userData="the host is stopped and started with the new user data (a few minutes offline)",
            userDataBase64="the host is stopped and started with the new user data (a few minutes offline)",
        ),
        safety=("rootBlockDevice.encrypted", "disableApiTermination"),
        refused=m(**{"rootBlockDevice.volumeSize": SHRINK}),
    ),
    price="ec2_instance",
    key_inputs=("instanceType", "ami", "metadataOptions", "rootBlockDevice", "keyName"),
    mock=_ec2_instance,
)

EC2_LAUNCH_TEMPLATE = ResourceType(
    "aws:ec2/launchTemplate:LaunchTemplate",
    (COMPUTE,),
    facts=Facts(
        "launch template",
        "EC2: a change creates a new template version; running instances keep theirs until the Auto Scaling "
        "group's instance refresh replaces them (Rolling, within its min/max healthy percentage).",
        replaces=names(),
    ),
    free="no charge (its hosts are priced on the Auto Scaling group)",
    mock=_launch_template,
)

AUTOSCALING_GROUP = ResourceType(
    "aws:autoscaling/group:Group",
    (COMPUTE,),
    facts=Facts(
        "Auto Scaling group",
        "EC2 Auto Scaling: name is ForceNew; size and template version change in place; a new template "
        "version starts an instance refresh when instanceRefresh is set.",
        replaces=names(),
    ),
    price="autoscaling_group",
    mock=_autoscaling_group,
)

AUTOSCALING_POLICY = ResourceType(
    "aws:autoscaling/policy:Policy",
    (COMPUTE,),
    facts=Facts(
        "scaling policy",
        "EC2 Auto Scaling: name and group are ForceNew; the target changes in place.",
        replaces=frozenset({"name", "autoscalingGroupName"}),
    ),
    free="no charge (target tracking's own alarms are not priced: cents a month)",
)

EC2_EIP = ResourceType(
    "aws:ec2/eip:Eip",
    (COMPUTE,),
    facts=Facts(
        "Elastic IP",
        "EC2: an Elastic IP's address cannot be kept across a replacement; domain, address and pool are "
        "ForceNew. Records managed here follow the new address; anything else pinned to it breaks.",
        replaces=frozenset({"domain", "vpc", "publicIpv4Pool", "address", "customerOwnedIpv4Pool"}),
        holds_data="its public IP address (allow-lists and DNS records outside this stack point at it)",
        keep_data="update whatever outside this stack points at the address once the new one is known",
    ),
    price="eip",
    key_inputs=("domain",),
    mock=_elastic_ip,
)

ECR_REPOSITORY = ResourceType(
    "aws:ecr/repository:Repository",
    (COMPUTE,),
    facts=Facts(
        "container registry",
        "ECR: the repository name is ForceNew; deleting it deletes its images (forceDelete).",
        replaces=frozenset({"name"}),
        holds_data="the app's container images (released tags a rollback needs)",
        keep_data="push the released tags to the new repository first (`docker pull` / `docker push`)",
    ),
    price="ecr_repository",
    mock=_ecr_repository,
)

ECR_LIFECYCLE_POLICY = ResourceType(
    "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    (COMPUTE,),
    facts=Facts(
        "image lifecycle policy",
        "ECR: the repository is ForceNew; the policy text changes in place (and may expire images).",
        replaces=frozenset({"repository"}),
    ),
    free="no charge",
)

EBS_VOLUME = ResourceType(
    "aws:ebs/volume:Volume",
    (COMPUTE,),
)

ENTRIES = (
    EC2_INSTANCE,
    EC2_LAUNCH_TEMPLATE,
    AUTOSCALING_GROUP,
    AUTOSCALING_POLICY,
    EC2_EIP,
    ECR_REPOSITORY,
    ECR_LIFECYCLE_POLICY,
    EBS_VOLUME,
)

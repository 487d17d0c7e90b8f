"""What the deploy and operate tests share: moto stand-ins for the hosts and for SSM's answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

# The region moto answers in; the tests' stack files are copied with it (stacks_in_the_tests_region).
REGION = "eu-west-1"


@dataclass
class TaggedHosts:
    """ec2:DescribeInstances for named hosts (moto cannot make an instance of a given id): each carries its
    stack's tags, Name=leanstack-<stack>-host and Stack=<stack>."""

    stack_of: dict[str, str]

    def describe_instances(self, **kwargs: Any) -> Any:
        ids = next(f["Values"] for f in kwargs.get("Filters", []) if f["Name"] == "instance-id")
        instances = [
            {
                "InstanceId": host,
                "Tags": [{"Key": "Name", "Value": f"leanstack-{stack}-host"}, {"Key": "Stack", "Value": stack}],
            }
            for host in ids
            if (stack := self.stack_of.get(host))
        ]
        return {"Reservations": [{"Instances": instances}]}


@dataclass
class ScriptedSsm:
    """moto's client, except that `get_command_invocation` gives the listed answers in turn.

    An answer is an invocation dict, or a string: the code of an error to raise.
    """

    moto: Any
    answers: list[dict[str, Any] | str]
    asked: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send_command(self, **kwargs: Any) -> Any:
        self.sent.append(kwargs)
        return self.moto.send_command(**kwargs)

    def get_command_invocation(self, **kwargs: Any) -> Any:
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        if isinstance(answer, str):
            raise ClientError({"Error": {"Code": answer, "Message": f"{answer} (scripted)"}}, "GetCommandInvocation")
        return answer

    def get_parameter(self, **kwargs: Any) -> Any:
        return self.moto.get_parameter(**kwargs)

    def put_parameter(self, **kwargs: Any) -> Any:
        return self.moto.put_parameter(**kwargs)


def remove_hosts(ec2: Any, autoscaling: Any) -> None:
    for group in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]:
        autoscaling.delete_auto_scaling_group(AutoScalingGroupName=group["AutoScalingGroupName"], ForceDelete=True)
    running = [
        instance["InstanceId"]
        for reservation in ec2.describe_instances()["Reservations"]
        for instance in reservation["Instances"]
        if instance["State"]["Name"] != "terminated"
    ]
    if running:
        ec2.terminate_instances(InstanceIds=running)


def launch_group(ec2: Any, autoscaling: Any, role: str, count: int, stack: str = "dev") -> list[str]:
    """An Auto Scaling group of `count` hosts of `stack`, tagged as host_group.py tags them."""
    name = f"leanstack-{stack}-{role}-{uuid.uuid4().hex[:6]}"
    ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": "ami-12c6146b",
            "InstanceType": "t4g.small",
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": "Name", "Value": f"leanstack-{stack}-host"}, {"Key": "Role", "Value": role}],
                }
            ],
        },
    )
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name},
        MinSize=0,
        MaxSize=count,
        DesiredCapacity=count,
        VPCZoneIdentifier=subnet,
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return [member["InstanceId"] for member in group["Instances"]]

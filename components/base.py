"""What every leanstack component shares: its type token, child naming and tags."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from leanstack.config.naming import PROJECT  # config/naming.py: the one place the name and the scheme live


class LeanComponent(pulumi.ComponentResource):
    """A ComponentResource typed `leanstack:index:<ClassName>` whose children it parents.

    Child resources are named `<component name>-<suffix>` (`self.child_name`) so that two
    instances of a component never collide, and every taggable AWS child carries a
    `Component` tag next to the provider's default `Project`/`Stack`/`ManagedBy` tags.
    """

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{PROJECT}:index:{type(self).__name__}", name, None, opts)
        self.component_name = name

    def child_name(self, suffix: str) -> str:
        return f"{self.component_name}-{suffix}"

    def child_opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    @property
    def tags(self) -> dict[str, str]:
        return {"Component": type(self).__name__}

    def named_tags(self, name: str) -> dict[str, str]:
        return {**self.tags, "Name": name}

    def _admit(
        self,
        security_group_id: pulumi.Input[str],
        client: str,
        client_sg: pulumi.Input[str],
        port: int,
        what: str,
    ) -> None:
        """One ingress rule: `port` from one client security group, nothing else."""
        aws.vpc.SecurityGroupIngressRule(
            self.child_name(f"from-{client}"),
            security_group_id=security_group_id,
            referenced_security_group_id=client_sg,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=f"{what} from the {client}",
            tags=self.tags,
            opts=self.child_opts(),
        )


def policy_json(*statements: dict[str, Any]) -> str:
    """An IAM policy document as stable JSON (sorted keys, so diffs show real changes only)."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)


def policy_output(*statements: dict[str, Any]) -> pulumi.Output[str]:
    """Like `policy_json`, for statements that contain Outputs (ARNs not known yet)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})

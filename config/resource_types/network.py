"""Network: the VPC and what it is made of, security groups and rules, the load balancer and its TLS."""

from __future__ import annotations

from typing import Any

from leanstack.config.resource_types.model import (
    MOCK_ACCOUNT,
    NETWORK,
    Facts,
    MockCall,
    ResourceType,
    digest,
    ec2_id,
    names,
)


def _elb_arn(call: MockCall, kind: str) -> tuple[str, dict[str, Any]]:
    suffix = f"{kind}/{call.name}/{digest(call.token, call.name, length=16)}"
    arn = f"arn:aws:elasticloadbalancing:{call.region}:{MOCK_ACCOUNT}:{suffix}"
    return arn, {"arn": arn, "arnSuffix": suffix}


def _load_balancer(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    arn, outputs = _elb_arn(call, "app")
    outputs["dnsName"] = f"{call.name}-{digest(call.name, length=10)}.{call.region}.elb.amazonaws.com"
    return arn, outputs


def _target_group(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    return _elb_arn(call, "targetgroup")


EC2_VPC = ResourceType(
    "aws:ec2/vpc:Vpc",
    (NETWORK,),
    facts=Facts(
        "VPC",
        "EC2: a VPC's primary CIDR block cannot be changed (ForceNew): a new VPC, and so new subnets, "
        "security groups, host, database and cache inside it.",
        replaces=frozenset({"cidrBlock", "instanceTenancy", "ipv4IpamPoolId"}),
    ),
    free="no charge",
    key_inputs=("cidrBlock",),
    mock=ec2_id("vpc"),
)

EC2_SUBNET = ResourceType(
    "aws:ec2/subnet:Subnet",
    (NETWORK,),
    facts=Facts(
        "subnet",
        "EC2: a subnet's CIDR block, AZ and VPC are ForceNew; what runs in it moves with it.",
        replaces=frozenset({"cidrBlock", "availabilityZone", "availabilityZoneId", "vpcId", "ipv6CidrBlock"}),
    ),
    free="no charge",
    key_inputs=("cidrBlock", "availabilityZone", "mapPublicIpOnLaunch"),
    mock=ec2_id("subnet"),
)

EC2_INTERNET_GATEWAY = ResourceType(
    "aws:ec2/internetGateway:InternetGateway",
    (NETWORK,),
    facts=Facts("internet gateway", "EC2: attaching to another VPC detaches it first; nothing is stored."),
    free="no charge (data transfer is billed, see assumptions)",
    mock=ec2_id("igw"),
)

EC2_ROUTE_TABLE = ResourceType(
    "aws:ec2/routeTable:RouteTable",
    (NETWORK,),
    facts=Facts("route table", "EC2: the VPC is ForceNew; routes change in place.", replaces=frozenset({"vpcId"})),
    free="no charge",
    mock=ec2_id("rtb"),
)

EC2_ROUTE_TABLE_ASSOCIATION = ResourceType(
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    (NETWORK,),
    facts=Facts(
        "route table association",
        "EC2: the subnet is ForceNew; the route table is swapped in place.",
        replaces=frozenset({"subnetId", "gatewayId"}),
    ),
    free="no charge",
)

EC2_SECURITY_GROUP = ResourceType(
    "aws:ec2/securityGroup:SecurityGroup",
    (NETWORK,),
    facts=Facts(
        "security group",
        "EC2: name, description and VPC are ForceNew; its rules change in place.",
        replaces=names("vpcId", "description"),
    ),
    free="no charge",
    key_inputs=("name", "ingress"),
    mock=ec2_id("sg"),
)

EC2_DEFAULT_SECURITY_GROUP = ResourceType(
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
    (NETWORK,),
    facts=Facts(
        "default security group",
        "EC2: the VPC's default group is adopted, never created or deleted; removing it from the program "
        "only stops managing it.",
        replaces=frozenset({"vpcId"}),
    ),
    free="no charge",
)

VPC_SECURITY_GROUP_INGRESS_RULE = ResourceType(
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    (NETWORK,),
    facts=Facts(
        "ingress rule",
        "EC2: a rule's group is ForceNew; ports and sources are modified in place.",
        replaces=frozenset({"securityGroupId"}),
    ),
    free="no charge",
    key_inputs=("fromPort", "toPort", "description"),
)

VPC_SECURITY_GROUP_EGRESS_RULE = ResourceType(
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    (NETWORK,),
    facts=Facts(
        "egress rule",
        "EC2: a rule's group is ForceNew; ports and destinations are modified in place.",
        replaces=frozenset({"securityGroupId"}),
    ),
    free="no charge",
)

LB_LOAD_BALANCER = ResourceType(
    "aws:lb/loadBalancer:LoadBalancer",
    (NETWORK,),
    facts=Facts(
        "load balancer",
        "ELB: name, type and scheme are ForceNew; a new load balancer has a new DNS name (the CDN record "
        "managed here follows).",
        replaces=names("internal", "loadBalancerType", "customerOwnedIpv4Pool"),
        safety=("enableDeletionProtection", "dropInvalidHeaderFields"),
        exposes_when_off=("internal",),
    ),
    price="load_balancer",
    mock=_load_balancer,
)

LB_TARGET_GROUP = ResourceType(
    "aws:lb/targetGroup:TargetGroup",
    (NETWORK,),
    facts=Facts(
        "target group",
        "ELB: name, port, protocol, target type and VPC are ForceNew; health checks change in place.",
        replaces=names("port", "protocol", "protocolVersion", "targetType", "vpcId"),
    ),
    free="no charge (priced on the load balancer)",
    mock=_target_group,
)

LB_LISTENER = ResourceType(
    "aws:lb/listener:Listener",
    (NETWORK,),
    facts=Facts(
        "listener",
        "ELB: the load balancer is ForceNew; port, protocol, certificate and rules change in place.",
        replaces=frozenset({"loadBalancerArn"}),
    ),
    free="no charge (priced on the load balancer)",
)

LB_TRUST_STORE = ResourceType(
    "aws:lb/trustStore:TrustStore",
    (NETWORK,),
    facts=Facts(
        "mTLS trust store",
        "ELB: name is ForceNew; the CA bundle is replaced in place.",
        replaces=names(),
    ),
    free="no charge (mutual TLS is billed in the load balancer's LCUs)",
)

ACM_CERTIFICATE = ResourceType(
    "aws:acm/certificate:Certificate",
    (NETWORK,),
    facts=Facts(
        "certificate",
        "ACM: an imported certificate's body is re-imported in place; a requested one's domain is ForceNew.",
        replaces=frozenset({"domainName", "subjectAlternativeNames", "validationMethod", "keyAlgorithm"}),
    ),
    free="no charge for certificates imported into ACM",
)

EC2_EIP_ASSOCIATION = ResourceType(
    "aws:ec2/eipAssociation:EipAssociation",
    (NETWORK,),
    free="no charge (the address is priced on the EIP)",
)

EC2_ROUTE = ResourceType(
    "aws:ec2/route:Route",
    (NETWORK,),
    free="no charge",
)

EC2_SECURITY_GROUP_RULE = ResourceType(
    "aws:ec2/securityGroupRule:SecurityGroupRule",
    (NETWORK,),
    free="no charge",
)

ENTRIES = (
    EC2_VPC,
    EC2_SUBNET,
    EC2_INTERNET_GATEWAY,
    EC2_ROUTE_TABLE,
    EC2_ROUTE_TABLE_ASSOCIATION,
    EC2_SECURITY_GROUP,
    EC2_DEFAULT_SECURITY_GROUP,
    VPC_SECURITY_GROUP_INGRESS_RULE,
    VPC_SECURITY_GROUP_EGRESS_RULE,
    LB_LOAD_BALANCER,
    LB_TARGET_GROUP,
    LB_LISTENER,
    LB_TRUST_STORE,
    ACM_CERTIFICATE,
    EC2_EIP_ASSOCIATION,
    EC2_ROUTE,
    EC2_SECURITY_GROUP_RULE,
)

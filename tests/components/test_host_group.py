"""HostGroup: hosts behind an ALB reachable only from Cloudflare, one jobs host, rolling refresh, its alarms.

Tested on its own (tests/fixtures/standalone_host_group.py) and as ProxyHost's scaled-out form
in the scale stack (stacks/Pulumi.scale.yaml).
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
import yaml

from leanstack.components import Network, OriginCertificate
from leanstack.components.host_group import GroupDependencies, HostGroup, HostsArgs
from leanstack.host.render import ORIGIN_PULL_CA_PEM
from leanstack.mocks import CLOUDFLARE_IPV4, REPO, Resource, StackRun, run_program
from tests.components.helpers import children

PROGRAM = REPO / "tests" / "fixtures" / "standalone_host_group.py"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
_runs: dict[str, StackRun] = {}


def solo(**config: Any) -> StackRun:
    key = repr(sorted(config.items()))
    if key not in _runs:
        values = {f"solo:{k}": v for k, v in config.items()}
        _runs[key] = run_program("solo", {"aws:region": "us-east-1", **values}, PROGRAM)
    return _runs[key]


@pytest.fixture(scope="module")
def three() -> StackRun:
    return solo(count="3")


def group_of(run: StackRun, role: str) -> Resource:
    return next(g for g in run.of_type(ASG) if g.name.endswith(f"-{role}"))


def template_of(run: StackRun, role: str) -> Resource:
    return next(t for t in run.of_type(LT) if t.name.endswith(f"-{role}-template"))


def cloud_config(template: Resource) -> dict[str, Any]:
    raw = gzip.decompress(base64.b64decode(template.inputs["userData"])).decode()
    document = yaml.safe_load(raw)
    assert isinstance(document, dict)
    return document


def enabled_units(template: Resource) -> list[str]:
    return [cmd[-1] for cmd in cloud_config(template).get("runcmd", []) if cmd[:3] == ["systemctl", "enable", "--now"]]


# --------------------------------------------------------------------------- on its own


def test_one_host_is_not_a_group() -> None:
    with pytest.raises(ValueError, match=r"hosts.count > 1 or hosts.autoscale"):
        # Never-constructed stand-ins of the right kinds: the constructor refuses one host before it uses them.
        dependencies = GroupDependencies(
            network=object.__new__(Network),
            certificate=object.__new__(OriginCertificate),
            cloudflare_ipv4=[],
            files_bucket="",
            alarm_topic_arn="",
        )
        HostGroup.__init__(object.__new__(HostGroup), "x", HostsArgs(), stack="s", dependencies=dependencies,
                           health_path="/")  # fmt: skip


def test_load_balancer_listens_on_443_only_from_cloudflare_with_the_origin_certificate(three: StackRun) -> None:
    lb = three.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert (lb["loadBalancerType"], lb["internal"], lb["dropInvalidHeaderFields"]) == ("application", False, True)
    assert lb["subnets"] == [three.named(f"net-public-{x}").id for x in "ab"]
    sg = three.named("web-lb-sg")
    assert lb["securityGroups"] == [sg.id]
    assert [(r["fromPort"], r["toPort"], r["cidrBlocks"]) for r in sg.inputs["ingress"]] == [
        (443, 443, ["173.245.48.0/20", "103.21.244.0/22"])
    ]
    listeners = three.of_type("aws:lb/listener:Listener")
    assert [(x.inputs["port"], x.inputs["protocol"]) for x in listeners] == [(443, "HTTPS")]
    listener = listeners[0].inputs
    certificate = three.one("aws:acm/certificate:Certificate")
    assert listener["certificateArn"] == certificate.outputs["arn"]
    # Imported, not requested from ACM: Cloudflare's "strict" mode trusts the origin certificate.
    assert certificate.inputs["certificateBody"] == "MOCK ORIGIN CERTIFICATE"
    assert "domainName" not in certificate.inputs and "validationMethod" not in certificate.inputs
    assert listener["defaultActions"] == [
        {"type": "forward", "targetGroupArn": three.one("aws:lb/targetGroup:TargetGroup").outputs["arn"]}
    ]


def test_authenticated_origin_pulls_are_verified_at_the_load_balancer(three: StackRun) -> None:
    listener = three.one("aws:lb/listener:Listener").inputs
    store = three.one("aws:lb/trustStore:TrustStore")
    assert listener["mutualAuthentication"] == {"mode": "verify", "trustStoreArn": store.outputs["arn"]}
    bundle = three.named("web-origin-pull-ca").inputs
    assert bundle["content"] == ORIGIN_PULL_CA_PEM and bundle["bucket"] == "their-files-bucket"
    assert (store.inputs["caCertificatesBundleS3Bucket"], store.inputs["caCertificatesBundleS3Key"]) == (
        "their-files-bucket",
        bundle["key"],
    )


def test_without_the_cdn_443_is_open_and_no_client_certificate_is_asked() -> None:
    run = solo(count="2", proxied="false")
    assert run.named("web-lb-sg").inputs["ingress"][0]["cidrBlocks"] == ["0.0.0.0/0"]
    assert "mutualAuthentication" not in run.one("aws:lb/listener:Listener").inputs
    assert run.of_type("aws:lb/trustStore:TrustStore") == []


def test_target_group_checks_the_apps_health_path_over_https(three: StackRun) -> None:
    group = three.one("aws:lb/targetGroup:TargetGroup").inputs
    assert (group["port"], group["protocol"], group["targetType"]) == (443, "HTTPS", "instance")
    check = group["healthCheck"]
    assert (check["protocol"], check["path"], check["matcher"]) == ("HTTPS", "/up", "200")
    assert group["deregistrationDelay"] == 70  # longer than nginx's 60 s proxy timeout


def test_hosts_admit_the_load_balancer_and_it_reaches_only_them(three: StackRun) -> None:
    egress = three.one("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule").inputs
    assert egress["securityGroupId"] == three.named("web-lb-sg").id
    assert egress["referencedSecurityGroupId"] == three.named("their-hosts").id
    assert (egress["fromPort"], egress["toPort"], egress["ipProtocol"]) == (443, 443, "tcp")
    assert "cidrIpv4" not in egress and "egress" not in three.named("web-lb-sg").inputs


def test_fixed_count_is_one_jobs_host_and_the_rest_web(three: StackRun) -> None:
    web, jobs = group_of(three, "web").inputs, group_of(three, "jobs").inputs
    assert (web["minSize"], web["maxSize"], web["desiredCapacity"]) == (2, 2, 2)
    assert (jobs["minSize"], jobs["maxSize"], jobs["desiredCapacity"]) == (1, 1, 1)
    target_group = three.one("aws:lb/targetGroup:TargetGroup").outputs["arn"]
    for group in (web, jobs):
        assert group["targetGroupArns"] == [target_group]
        assert group["vpcZoneIdentifiers"] == [three.named(f"net-public-{x}").id for x in "ab"]
        assert (group["healthCheckType"], group["healthCheckGracePeriod"]) == ("ELB", 300)
        assert group["waitForElbCapacity"] == group["minSize"]
    assert three.of_type("aws:autoscaling/policy:Policy") == []


def test_instance_refresh_rolls_web_hosts_and_never_runs_two_jobs_hosts(three: StackRun) -> None:
    web, jobs = group_of(three, "web").inputs, group_of(three, "jobs").inputs
    for group in (web, jobs):
        assert group["instanceRefresh"]["strategy"] == "Rolling"
        assert group["launchTemplate"]["version"] == "1"  # the template's latest version: a new one refreshes
    # Web: launch before terminate, full count throughout. Jobs: terminate first, never two at once.
    assert web["instanceRefresh"]["preferences"]["minHealthyPercentage"] == 100
    assert web["instanceRefresh"]["preferences"]["maxHealthyPercentage"] == 200
    assert jobs["instanceRefresh"]["preferences"]["maxHealthyPercentage"] == 100
    assert jobs["instanceMaintenancePolicy"] == {"minHealthyPercentage": 0, "maxHealthyPercentage": 100}


def test_launch_templates_are_the_hosts_imdsv2_encrypted_gp3_public_ip_no_key(three: StackRun) -> None:
    for role, user_data in (("web", "V0VC"), ("jobs", "Sk9CUw==")):
        template = template_of(three, role).inputs
        assert group_of(three, role).inputs["launchTemplate"]["id"] == template_of(three, role).id
        assert (template["imageId"], template["instanceType"]) == ("ami-0123456789abcdef0", "t4g.medium")
        assert template["metadataOptions"]["httpTokens"] == "required"
        assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
        [disk] = template["blockDeviceMappings"]
        assert disk["ebs"] == {
            "volumeType": "gp3",
            "volumeSize": 30,
            "encrypted": "true",
            "deleteOnTermination": "true",
        }
        [nic] = template["networkInterfaces"]
        assert nic["associatePublicIpAddress"] == "true"  # the way out; nothing comes in by it
        assert nic["securityGroups"] == [three.named("their-hosts").id]
        assert template["iamInstanceProfile"] == {"name": "their-profile"}
        assert "keyName" not in template and template["userData"] == user_data
        tags = {spec["resourceType"]: spec["tags"] for spec in template["tagSpecifications"]}
        assert tags["instance"]["Role"] == role and tags["instance"]["Stack"] == "solo"
    assert three.of_type("aws:ec2/eip:Eip") == [] and three.of_type("aws:ec2/instance:Instance") == []


def test_autoscale_lets_aws_choose_the_web_count_on_cpu() -> None:
    run = solo(autoscale="[3, 6]")
    web = group_of(run, "web").inputs
    assert (web["minSize"], web["maxSize"]) == (2, 5) and "desiredCapacity" not in web
    assert group_of(run, "jobs").inputs["maxSize"] == 1
    policy = run.one("aws:autoscaling/policy:Policy").inputs
    assert policy["autoscalingGroupName"] == group_of(run, "web").outputs["name"]
    tracking = policy["targetTrackingConfiguration"]
    assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == "ASGAverageCPUUtilization"
    assert tracking["targetValue"] == 60


def test_alarms_on_unhealthy_hosts_and_the_load_balancers_own_5xx_share(three: StackRun) -> None:
    alarms = {a.name: a.inputs for a in three.of_type(ALARM)}
    assert set(alarms) == {"web-unhealthy-targets", "web-load-balancer-errors"}
    lb = three.one("aws:lb/loadBalancer:LoadBalancer").outputs["arnSuffix"]
    unhealthy = alarms["web-unhealthy-targets"]
    assert (unhealthy["metricName"], unhealthy["namespace"]) == ("UnHealthyHostCount", "AWS/ApplicationELB")
    assert unhealthy["dimensions"] == {
        "TargetGroup": three.one("aws:lb/targetGroup:TargetGroup").outputs["arnSuffix"],
        "LoadBalancer": lb,
    }
    assert (unhealthy["evaluationPeriods"], unhealthy["threshold"]) == (15, 1)
    errors = alarms["web-load-balancer-errors"]
    metrics = {q["id"]: q["metric"]["metricName"] for q in errors["metricQueries"] if q.get("metric")}
    assert metrics == {"errors": "HTTPCode_ELB_5XX_Count", "requests": "RequestCount"}
    share = next(q for q in errors["metricQueries"] if q["id"] == "share")
    assert share["expression"] == "IF(requests >= 10, 100 * FILL(errors, 0) / requests, 0)"
    assert (errors["threshold"], errors["evaluationPeriods"], errors["treatMissingData"]) == (5, 5, "notBreaching")
    for alarm in alarms.values():
        assert alarm["alarmActions"] == ["arn:aws:sns:us-east-1:123456789012:their-topic"]
        assert "Runbook: #" in alarm["alarmDescription"]


def test_origin_waits_for_the_hosts(three: StackRun) -> None:
    """Cloudflare should follow the load balancer only once the groups exist (and their hosts are healthy)."""
    lb = three.one("aws:lb/loadBalancer:LoadBalancer")
    assert three.outputs["origin"] == lb.outputs["dnsName"]
    assert three.outputs["jobs"] == group_of(three, "jobs").outputs["name"]


# --------------------------------------------------------------------------- as the scale stack's ProxyHost


def test_scaled_proxy_host_has_no_instance_no_elastic_ip_and_a_group(scale: StackRun) -> None:
    assert scale.of_type("aws:ec2/instance:Instance") == [] and scale.of_type("aws:ec2/eip:Eip") == []
    assert {r.name for r in children(scale, "HostGroup")} >= {"host-group-lb", "host-group-web", "host-group-jobs"}
    assert "hostInstanceId" not in scale.outputs and "hostPublicIp" not in scale.outputs
    assert scale.outputs["loadBalancerDnsName"] == scale.named("host-group-lb").outputs["dnsName"]
    assert scale.outputs["hostJobsGroup"] == scale.named("host-group-jobs").outputs["name"]
    web, jobs = scale.named("host-group-web").inputs, scale.named("host-group-jobs").inputs
    assert (web["desiredCapacity"], jobs["desiredCapacity"]) == (1, 1)  # hosts.count 2


def test_scaled_hosts_reuse_the_proxy_hosts_role_security_group_and_ami(scale: StackRun) -> None:
    host_sg = scale.named("host-sg")
    # The host's group admits 443 from the load balancer's group only: no CIDR at all.
    assert host_sg.inputs["ingress"] == [
        {
            "description": "HTTPS from the load balancer only",
            "fromPort": 443,
            "toPort": 443,
            "protocol": "tcp",
            "securityGroups": [scale.named("host-group-lb-sg").id],
        }
    ]
    assert scale.named("host-group-lb-sg").inputs["ingress"][0]["cidrBlocks"] == list(CLOUDFLARE_IPV4)
    for role in ("web", "jobs"):
        template = template_of(scale, role).inputs
        assert template["iamInstanceProfile"]["name"] == scale.named("host-profile").outputs["name"]
        assert template["networkInterfaces"][0]["securityGroups"] == [host_sg.id]
        assert template["imageId"].startswith("ami-0") and template["instanceType"] == "t4g.small"
    # The database still admits the same security group: its rule does not change.
    assert scale.named("database-from-host").inputs["referencedSecurityGroupId"] == host_sg.id


def test_backup_and_drill_timers_run_on_exactly_one_host(scale: StackRun) -> None:
    jobs, web = template_of(scale, "jobs"), template_of(scale, "web")
    timers = {"leanstack-backup.timer", "leanstack-restore-drill.timer"}
    assert timers <= set(enabled_units(jobs))
    assert timers.isdisjoint(enabled_units(web))
    # Otherwise the same host: same files (but app.json's runs_jobs: the app's jobs too), packages, other units.
    files = {f["path"]: f["content"] for f in cloud_config(jobs)["write_files"]}
    web_files = {f["path"]: f["content"] for f in cloud_config(web)["write_files"]}
    app_json = "/etc/leanstack/app.json"
    assert json.loads(files[app_json])["runs_jobs"] is True and json.loads(web_files[app_json])["runs_jobs"] is False
    assert {p: c for p, c in files.items() if p != app_json} == {p: c for p, c in web_files.items() if p != app_json}
    assert cloud_config(jobs)["packages"] == cloud_config(web)["packages"]
    assert [u for u in enabled_units(jobs) if u not in timers] == enabled_units(web)
    # Exactly one: the jobs group holds one host, and a refresh terminates it before launching the next.
    group = scale.named("host-group-jobs").inputs
    assert (group["minSize"], group["maxSize"]) == (1, 1)
    assert group["instanceMaintenancePolicy"]["maxHealthyPercentage"] == 100


NGINX_CONF = "/etc/nginx/nginx.conf"
PULL_CA = "/etc/nginx/tls/cloudflare-origin-pull-ca.pem"


def single_host_config(run: StackRun) -> dict[str, Any]:
    raw = gzip.decompress(base64.b64decode(run.one("aws:ec2/instance:Instance").inputs["userDataBase64"]))
    document = yaml.safe_load(raw.decode())
    assert isinstance(document, dict)
    return document


def files_of(document: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: str(f["content"]) for f in document["write_files"]}


def test_the_single_hosts_user_data_is_the_jobs_hosts_but_for_nginx(prod: StackRun, prod_grown: StackRun) -> None:
    """Growing prod changes where cloud-init runs, how nginx meets its clients and that the host is one of
    several behind a load balancer, nothing else."""
    single = single_host_config(prod)
    jobs = cloud_config(template_of(prod_grown, "jobs"))
    assert {k: v for k, v in jobs.items() if k != "write_files"} == {
        k: v for k, v in single.items() if k != "write_files"
    }
    single_files, jobs_files = files_of(single), files_of(jobs)
    # The load balancer's trust store holds the origin-pull CA now; the host needs no copy.
    assert set(single_files) - set(jobs_files) == {PULL_CA} and set(jobs_files) <= set(single_files)
    backup_env = "/etc/leanstack/backup.env"
    assert sorted(p for p in jobs_files if jobs_files[p] != single_files[p]) == sorted([NGINX_CONF, backup_env])
    # Behind the load balancer the restore's swap needs the page on every host first (it says so).
    added = set(jobs_files[backup_env].splitlines()) - set(single_files[backup_env].splitlines())
    assert added == {'BEHIND_LOAD_BALANCER="1"'}
    assert set(single_files[backup_env].splitlines()) <= set(jobs_files[backup_env].splitlines())


def test_scaled_hosts_run_nginx_behind_the_load_balancer_the_single_host_does_not(
    prod: StackRun, scale: StackRun
) -> None:
    for role in ("web", "jobs"):
        conf = files_of(cloud_config(template_of(scale, role)))[NGINX_CONF]
        assert "ssl_verify_client" not in conf and "ssl_reject_handshake" not in conf, role
        assert "listen 443 ssl default_server;" in conf, role
        # The load balancer's addresses: the VPC's block, not Cloudflare's ranges.
        assert "set_real_ip_from 10.20.0.0/16;" in conf and CLOUDFLARE_IPV4[0] not in conf, role
    single = files_of(single_host_config(prod))[NGINX_CONF]
    assert "ssl_verify_client on;" in single and "ssl_reject_handshake on;" in single
    assert f"set_real_ip_from {CLOUDFLARE_IPV4[0]};" in single and "10.20.0.0/16" not in single


def test_load_balancer_appends_the_client_to_x_forwarded_for(three: StackRun) -> None:
    # nginx's CDN-off mode takes the client from the last entry, the one the load balancer appends.
    lb = three.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert lb["xffHeaderProcessingMode"] == "append"
    assert lb.get("enableXffClientPort") in (None, False)  # an address with a port would not parse


def test_alarms_follow_the_hosts(prod: StackRun, scale: StackRun) -> None:
    prod_alarms = {a.name for a in prod.of_type(ALARM)}
    scale_alarms = {a.name for a in scale.of_type(ALARM)}
    assert prod_alarms - scale_alarms == {"host-recover", "host-still-broken"}
    assert scale_alarms - prod_alarms == {"host-group-unhealthy-targets", "host-group-load-balancer-errors"}
    # Site down (through the CDN), the app's 5xx share from nginx's logs and the backup alarms stay.
    assert {"uptime-site-down", "host-error-rate", "host-backup-stale"} <= scale_alarms

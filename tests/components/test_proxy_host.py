"""ProxyHost: one Graviton host, IMDSv2, encrypted disk, no SSH, 443 from Cloudflare only."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from collections.abc import Callable
from typing import Any

import yaml

from leanstack.mocks import CLOUDFLARE_IPV4, REPO, StackRun
from tests.components.helpers import actions, is_secret_input, statements, user_data_of, written_file
from tests.conftest import run_with


def test_instance_is_a_graviton_host_on_the_current_al2023_ami(dev: StackRun) -> None:
    instance = dev.one("aws:ec2/instance:Instance").inputs
    assert instance["instanceType"] == "t4g.small"
    # The mocks answer the AMI lookup with an id derived from the region; the program must use it.
    assert instance["ami"].startswith("ami-0") and instance["ami"] == dev.one("aws:ec2/instance:Instance").inputs["ami"]
    assert instance["subnetId"] == dev.named("network-public-a").id


def test_ami_can_be_pinned(run_dev_with: Callable[[dict[str, Any]], StackRun]) -> None:
    run = run_dev_with({"leanstack:host": {"amiId": "ami-0123456789abcdef0"}})
    assert run.one("aws:ec2/instance:Instance").inputs["ami"] == "ami-0123456789abcdef0"


def test_imdsv2_encrypted_gp3_and_no_key_pair(dev: StackRun) -> None:
    instance = dev.one("aws:ec2/instance:Instance").inputs
    assert instance["metadataOptions"]["httpTokens"] == "required"
    assert instance["metadataOptions"]["httpPutResponseHopLimit"] == 1
    root = instance["rootBlockDevice"]
    assert (root["volumeType"], root["encrypted"], root["volumeSize"]) == ("gp3", True, 20)
    assert "keyName" not in instance
    assert instance["userDataReplaceOnChange"] is True


def test_elastic_ip_is_attached_to_the_host(dev: StackRun) -> None:
    eip = dev.one("aws:ec2/eip:Eip")
    assert eip.inputs["instance"] == dev.one("aws:ec2/instance:Instance").id
    assert dev.outputs["hostPublicIp"] == eip.outputs["publicIp"]


def test_only_https_from_cloudflare_reaches_the_host(dev: StackRun) -> None:
    sg = dev.named("host-sg").inputs
    assert len(sg["ingress"]) == 1
    rule = sg["ingress"][0]
    assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", 443, 443)
    assert rule["cidrBlocks"] == list(CLOUDFLARE_IPV4)
    assert "0.0.0.0/0" not in rule["cidrBlocks"]
    ports = {(r["fromPort"], r["toPort"]) for r in sg["ingress"]}
    assert (22, 22) not in ports and (80, 80) not in ports


def test_without_the_cdn_proxying_443_is_open_to_all(
    run_dev_with: Callable[[dict[str, Any]], StackRun],
) -> None:
    run = run_dev_with({"leanstack:cdn": {"proxied": False}})
    rule = run.named("host-sg").inputs["ingress"][0]
    assert rule["cidrBlocks"] == ["0.0.0.0/0"] and rule["fromPort"] == 443


def test_role_allows_ssm_sessions_and_exactly_what_the_host_does(dev: StackRun) -> None:
    # No AWS-managed policy: AmazonSSMManagedInstanceCore allowed ssm:GetParameter on every parameter (issue 15).
    assert dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    found = statements(dev.named("host-permissions"))
    by_sid = {s["Sid"]: s for s in found}
    assert by_sid["ReadDatabasePassword"]["Resource"] == dev.outputs["databaseSecretArn"]
    assert actions(by_sid["ReadDatabasePassword"]) == ["secretsmanager:GetSecretValue"]
    assert by_sid["ReadOwnParameters"]["Resource"].endswith(":parameter/leanstack/dev/*")
    assert by_sid["PublishStackMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Leanstack/dev"}}
    assert by_sid["ShipStackLogs"]["Resource"].endswith(":log-group:/leanstack/dev/*")
    assert "ssm:UpdateInstanceInformation" in actions(by_sid["RegisterWithSsm"])
    # ec2messages:DeleteMessage removes a delivered Run Command message from the host's own queue.
    every_action = [a for s in found for a in actions(s) if a != "ec2messages:DeleteMessage"]
    assert not any("Delete" in a or a.endswith(":*") or a == "*" for a in every_action)
    trust = statements(dev.named("host-role"), "assumeRolePolicy")
    assert trust[0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_origin_certificate_and_key_go_to_ssm_as_secrets(dev: StackRun) -> None:
    params = {p.inputs["name"]: p for p in dev.of_type("aws:ssm/parameter:Parameter")}
    cert, key = params["/leanstack/dev/tls/origin-cert"], params["/leanstack/dev/tls/origin-key"]
    assert cert.inputs["type"] == key.inputs["type"] == "SecureString"
    assert is_secret_input(key, "value")


def test_user_data_installs_nginx_proxying_to_the_app_without_secrets(dev: StackRun) -> None:
    document = user_data_of(dev)
    assert "nginx" in document["packages"]
    nginx = written_file(dev, "/etc/nginx/nginx.conf")
    # The app's address lives in the one file nginx.conf includes (the deploy script rewrites it).
    assert "include /etc/nginx/leanstack-upstream.conf;" in nginx
    assert "127.0.0.1:3000" in written_file(dev, "/etc/nginx/leanstack-upstream.conf")
    assert "location = /healthz" in nginx or "location /healthz" in nginx
    assert "server_name dev.example.com;" in nginx
    instance = dev.one("aws:ec2/instance:Instance").inputs["userDataBase64"]
    assert "MOCK PRIVATE KEY" not in str(document) and "MOCK PRIVATE KEY" not in instance
    # The certificate and key are fetched at boot from SSM, by path.
    assert "/leanstack/dev/tls" in str(document)


def test_user_data_follows_the_app_port(run_dev_with: Callable[[dict[str, Any]], StackRun]) -> None:
    run = run_dev_with({"leanstack:app": {"port": 8080, "healthPath": "/up"}})
    nginx = written_file(run, "/etc/nginx/nginx.conf")
    upstream = written_file(run, "/etc/nginx/leanstack-upstream.conf")
    assert "127.0.0.1:8080" in upstream and "127.0.0.1:3000" not in upstream + nginx
    assert "/up" in nginx


def test_auto_recovery_and_still_broken_alarms(dev: StackRun) -> None:
    recover = dev.named("host-recover").inputs
    assert recover["metricName"] == "StatusCheckFailed_System"
    assert recover["alarmActions"] == ["arn:aws:automate:us-east-1:ec2:recover"]
    assert recover["dimensions"] == {"InstanceId": dev.one("aws:ec2/instance:Instance").id}
    broken = dev.named("host-still-broken").inputs
    assert broken["alarmActions"] == [dev.outputs["alertTopicArn"]]
    assert broken["period"] * broken["evaluationPeriods"] == 900


def test_backup_alarms_watch_the_metrics_the_host_tools_publish(dev: StackRun) -> None:
    stale = dev.named("host-backup-stale").inputs
    assert (stale["namespace"], stale["metricName"]) == ("Leanstack/dev", "BackupSuccess")
    assert stale["period"] * stale["evaluationPeriods"] == 26 * 3600
    assert stale["datapointsToAlarm"] == 26 and stale["treatMissingData"] == "breaching"
    drill = dev.named("host-restore-drill-stale").inputs
    assert (drill["metricName"], drill["threshold"], drill["treatMissingData"]) == (
        "RestoreDrillAgeDays",
        35,
        "breaching",
    )
    failed = dev.named("host-restore-drill-failed").inputs
    assert failed["metricName"] == "RestoreDrillFailure"
    for alarm in (stale, drill, failed):
        assert alarm["dimensions"] == {"Stack": "dev"}
        assert alarm["alarmActions"] == [dev.outputs["alertTopicArn"]]


def test_files_too_large_for_user_data_are_fetched_from_a_private_bucket_and_verified(dev: StackRun) -> None:
    bucket = dev.named("host-files")
    assert bucket.inputs["bucketPrefix"] == "leanstack-dev-host-files-" and bucket.region == "us-east-1"
    assert dev.named("host-files-no-public").inputs["restrictPublicBuckets"] is True
    assert any(s["Sid"] == "DenyNonTLS" for s in statements(dev.named("host-files-policy")))
    # The agent's modules travel as text through the bucket; the host installs each after its sha256.
    upload = dev.named("host-file-backup.py").inputs
    module = (REPO / "host" / "agent" / "backup.py").read_text()
    assert upload["content"] == module and upload["key"] == "agent/backup.py"
    script = written_file(dev, "/usr/local/sbin/leanstack-fetch-host-files")
    digest = hashlib.sha256(module.encode()).hexdigest()
    assert f"fetch agent/backup.py {digest} /usr/local/lib/leanstack/leanstack_agent/backup.py 0644" in script
    agent_modules = sorted(p.name for p in (REPO / "host" / "agent").glob("*.py"))
    assert sorted(
        line.split()[1].removeprefix("agent/") for line in script.splitlines() if line.startswith("fetch ")
    ) == (agent_modules)
    assert f"BUCKET={bucket.outputs['bucket']}" in script
    paths = [f["path"] for f in user_data_of(dev)["write_files"]]
    # The commands' entry scripts are in the user data; the modules are not.
    assert "/usr/local/bin/leanstack-backup" in paths
    assert not [path for path in paths if "leanstack_agent" in path]
    assert "/etc/systemd/system/leanstack-host-files.service" in paths
    by_sid = {s["Sid"]: s for s in statements(dev.named("host-permissions"))}
    assert by_sid["ReadHostFiles"]["Resource"] == f"{bucket.outputs['arn']}/*"
    assert actions(by_sid["ReadHostFiles"]) == ["s3:GetObject"]
    # The instance waits for the upload, so the file is there when it boots.
    assert dev.named("host-file-backup.py").urn in dev.one("aws:ec2/instance:Instance").dependencies


def test_scaled_out_in_an_existing_vpc_nginx_trusts_its_associated_blocks() -> None:
    # The mocked VPC has 172.31.0.0/16, a secondary 100.64.0.0/20 and a 192.168.0.0/24 being removed.
    run = run_with(
        {
            "leanstack:hosts": {"count": 2},
            "leanstack:network": {
                "existingVpcId": "vpc-0123456789abcdef0",
                "existingPublicSubnetIds": ["subnet-00000000000000001", "subnet-00000000000000004"],
                "existingPrivateSubnetIds": ["subnet-00000000000000002", "subnet-00000000000000003"],
            },
        },
        "prod",
    )
    template = run.named("host-group-web-template").inputs["userData"]
    document = yaml.safe_load(gzip.decompress(base64.b64decode(template)).decode())
    conf = next(str(f["content"]) for f in document["write_files"] if f["path"] == "/etc/nginx/nginx.conf")
    assert re.findall(r"set_real_ip_from (\S+);", conf) == ["172.31.0.0/16", "100.64.0.0/20"]


def test_user_data_fits_ec2s_16_kb_limit(dev: StackRun, prod: StackRun) -> None:
    for run in (dev, prod):
        raw = base64.b64decode(run.one("aws:ec2/instance:Instance").inputs["userDataBase64"])
        assert len(raw) <= 16384


def test_nginx_access_log_is_shipped_to_a_log_group_with_retention(dev: StackRun) -> None:
    group = dev.named("host-access-log").inputs
    assert group["name"] == "/leanstack/dev/nginx/access" and group["retentionInDays"] == 30
    agent = written_file(dev, "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json")
    assert '"/leanstack/dev/nginx/access"' in agent


def test_two_metric_filters_count_user_requests_and_their_5xx(dev: StackRun) -> None:
    filters = {f.name: f.inputs for f in dev.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")}
    assert set(filters) == {"host-errors-filter", "host-requests-filter"}
    errors, requests = filters["host-errors-filter"], filters["host-requests-filter"]
    assert errors["logGroupName"] == requests["logGroupName"] == "/leanstack/dev/nginx/access"
    # Health checks are the site-down alarm's job; they are left out of both counts.
    assert errors["pattern"] == '{ ($.status >= 500) && ($.uri != "/healthz") }'
    assert requests["pattern"] == '{ ($.status > 0) && ($.uri != "/healthz") }'
    assert errors["metricTransformation"] == {
        "name": "Http5xxResponses-dev",
        "namespace": "Leanstack/dev",
        "value": "1",
        "unit": "Count",
    }
    assert requests["metricTransformation"]["name"] == "HttpRequests-dev"


def test_error_rate_alarm_is_metric_math_over_five_breaching_minutes(dev: StackRun) -> None:
    alarm = dev.named("host-error-rate").inputs
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert set(queries) == {"errors", "requests", "share"}
    assert queries["errors"]["metric"] == {
        "namespace": "Leanstack/dev", "metricName": "Http5xxResponses-dev", "period": 60, "stat": "Sum",
    }  # fmt: skip
    assert queries["requests"]["metric"]["metricName"] == "HttpRequests-dev"
    assert queries["share"]["expression"] == "IF(requests >= 10, 100 * FILL(errors, 0) / requests, 0)"
    assert [q["id"] for q in alarm["metricQueries"] if q.get("returnData")] == ["share"]
    assert (alarm["evaluationPeriods"], alarm["datapointsToAlarm"]) == (5, 5)
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 5)
    assert alarm["treatMissingData"] == "notBreaching"
    assert "metricName" not in alarm and "namespace" not in alarm
    assert alarm["alarmActions"] == alarm["okActions"] == [dev.outputs["alertTopicArn"]]


def test_error_rate_and_backup_stale_thresholds_come_from_config(tuned: StackRun) -> None:
    alarm = tuned.named("host-error-rate").inputs
    assert alarm["threshold"] == 2
    share = next(q for q in alarm["metricQueries"] if q["id"] == "share")
    assert share["expression"].startswith("IF(requests >= 50,")
    assert "over 2% of requests" in alarm["alarmDescription"]
    stale = tuned.named("host-backup-stale").inputs
    assert (stale["evaluationPeriods"], stale["datapointsToAlarm"]) == (30, 30)
    assert "in 30 hours" in stale["alarmDescription"]

"""Cdn: proxied records to the host, strict TLS, origin pulls, a cache rule for static paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leanstack.mocks import StackRun


def test_proxied_records_point_at_the_host(dev: StackRun) -> None:
    records = {r.inputs["name"]: r.inputs for r in dev.of_type("cloudflare:index/dnsRecord:DnsRecord")}
    assert sorted(records) == ["dev.example.com"]
    for record in records.values():
        assert (record["type"], record["proxied"], record["ttl"]) == ("A", True, 1)
        assert record["content"] == dev.outputs["hostPublicIp"]
        assert record["zoneId"] == "0123456789abcdef0123456789abcdef"


def test_configured_hostnames_replace_the_defaults(
    run_dev_with: Callable[[dict[str, Any]], StackRun],
) -> None:
    # app.dev.example.com is covered when dev.example.com is a zone of its own (Universal SSL: one level).
    run = run_dev_with(
        {"leanstack:hostnames": ["app.dev.example.com"], "leanstack:cdn": {"zoneName": "dev.example.com"}}
    )
    assert [r.inputs["name"] for r in run.of_type("cloudflare:index/dnsRecord:DnsRecord")] == ["app.dev.example.com"]
    cert = run.one("cloudflare:index/originCaCertificate:OriginCaCertificate")
    assert cert.inputs["hostnames"] == ["app.dev.example.com"]


def test_strict_tls_always_https_and_modern_tls_only(dev: StackRun) -> None:
    settings = {
        s.inputs["settingId"]: s.inputs["value"] for s in dev.of_type("cloudflare:index/zoneSetting:ZoneSetting")
    }
    assert settings == {"ssl": "strict", "always_use_https": "on", "min_tls_version": "1.2"}
    pulls = dev.one("cloudflare:index/authenticatedOriginPullsSettings:AuthenticatedOriginPullsSettings")
    assert pulls.inputs["enabled"] is True


def test_static_paths_are_cached_for_as_long_as_the_origin_says(dev: StackRun) -> None:
    ruleset = dev.one("cloudflare:index/ruleset:Ruleset").inputs
    assert ruleset["phase"] == "http_request_cache_settings" and ruleset["kind"] == "zone"
    [rule] = ruleset["rules"]
    assert rule["expression"] == (
        '(starts_with(http.request.uri.path, "/assets/") or starts_with(http.request.uri.path, "/static/"))'
    )
    assert rule["action"] == "set_cache_settings"
    parameters = rule["actionParameters"]
    assert parameters["cache"] is True
    # The origin's Cache-Control decides for every status: no override, no status-code TTL
    # (both apply over the origin's header, so a `private, no-store` 200, a 404 or a redirect
    # would be kept). The year for fingerprinted files is nginx's header (tests/host/test_nginx.py).
    assert parameters["edgeTtl"] == {"mode": "respect_origin"}
    assert parameters["browserTtl"] == {"mode": "respect_origin"}

"""Cloudflare, the TLS and random providers (computed locally), and the AWS provider itself."""

from __future__ import annotations

from typing import Any

from leanstack.config.resource_types.model import (
    EDGE,
    LOCAL,
    PROVIDER,
    Facts,
    MockCall,
    ResourceType,
    digest,
)


def _origin_certificate(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    return None, {"certificate": "MOCK ORIGIN CERTIFICATE", "expiresOn": "2041-11-22T00:00:00Z"}


def _private_key(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    return None, {"privateKeyPem": "MOCK PRIVATE KEY", "publicKeyPem": "MOCK PUBLIC KEY"}


def _cert_request(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    return None, {"certRequestPem": "MOCK CSR"}


def _random_password(call: MockCall) -> tuple[str | None, dict[str, Any]]:
    return None, {"result": "mock-" + digest(call.name, length=24)}


CLOUDFLARE_DNS_RECORD = ResourceType(
    "cloudflare:index/dnsRecord:DnsRecord",
    (EDGE,),
    facts=Facts(
        "DNS record",
        "Cloudflare (v5): the zone is ForceNew; name, type, content and proxied are edited in place through "
        "the DNS records API.",
        replaces=frozenset({"zoneId"}),
        exposes_when_off=("proxied",),
    ),
    key_inputs=("name", "type", "proxied"),
)

CLOUDFLARE_ZONE_SETTING = ResourceType(
    "cloudflare:index/zoneSetting:ZoneSetting",
    (EDGE,),
    facts=Facts(
        "zone setting",
        "Cloudflare: the setting id is ForceNew; values change in place (propagation not checked offline).",
        replaces=frozenset({"zoneId", "settingId"}),
    ),
    key_inputs=("settingId", "value"),
)

CLOUDFLARE_RULESET = ResourceType(
    "cloudflare:index/ruleset:Ruleset",
    (EDGE,),
    facts=Facts(
        "ruleset",
        "Cloudflare: zone, kind and phase are ForceNew; rules are replaced in place.",
        replaces=frozenset({"zoneId", "accountId", "kind", "phase"}),
    ),
)

CLOUDFLARE_AUTHENTICATED_ORIGIN_PULLS_SETTINGS = ResourceType(
    "cloudflare:index/authenticatedOriginPullsSettings:AuthenticatedOriginPullsSettings",
    (EDGE,),
    facts=Facts(
        "authenticated origin pulls",
        "Cloudflare: toggled in place per zone.",
        replaces=frozenset({"zoneId"}),
        safety=("enabled",),
    ),
)

CLOUDFLARE_ORIGIN_CA_CERTIFICATE = ResourceType(
    "cloudflare:index/originCaCertificate:OriginCaCertificate",
    (EDGE,),
    facts=Facts(
        "origin certificate",
        "Cloudflare: any change (hostnames, CSR, validity) issues a new certificate (ForceNew); the host "
        "picks it up from its parameter.",
        replaces=frozenset({"csr", "hostnames", "requestType", "requestedValidity"}),
    ),
    key_inputs=(
        "hostnames",
        "requestType",
        "requestedValidity",
    ),
    mock=_origin_certificate,
)

TLS_PRIVATE_KEY = ResourceType(
    "tls:index/privateKey:PrivateKey",
    (LOCAL,),
    facts=Facts(
        "private key",
        "TLS provider: algorithm and size are ForceNew (a new key, hence a new certificate).",
        replaces=frozenset({"algorithm", "rsaBits", "ecdsaCurve"}),
    ),
    free="computed locally by Pulumi",
    mock=_private_key,
)

TLS_CERT_REQUEST = ResourceType(
    "tls:index/certRequest:CertRequest",
    (LOCAL,),
    facts=Facts(
        "certificate request",
        "TLS provider: every input is ForceNew (a new CSR, hence a new certificate).",
        replaces=frozenset({"privateKeyPem", "subject", "dnsNames", "ipAddresses", "uris"}),
    ),
    free="computed locally by Pulumi",
    mock=_cert_request,
)

RANDOM_PASSWORD = ResourceType(
    "random:index/randomPassword:RandomPassword",
    (LOCAL,),
    facts=Facts(
        "random password",
        "random provider: every input (length, keepers) is ForceNew: a new password.",
        replaces=frozenset({"length", "special", "keepers", "upper", "lower", "numeric", "overrideSpecial"}),
    ),
    free="computed locally by Pulumi",
    mock=_random_password,
)

AWS_PROVIDER = ResourceType(
    "pulumi:providers:aws",
    (PROVIDER,),
    facts=Facts(
        "AWS provider",
        "Pulumi: a provider's region is where its resources live; changing it replaces every one of them.",
    ),
    key_inputs=("region", "profile"),
)

RANDOM_ID = ResourceType(
    "random:index/randomId:RandomId",
    (LOCAL,),
    free="computed locally by Pulumi",
)

RANDOM_STRING = ResourceType(
    "random:index/randomString:RandomString",
    (LOCAL,),
    free="computed locally by Pulumi",
)

TLS_SELF_SIGNED_CERT = ResourceType(
    "tls:index/selfSignedCert:SelfSignedCert",
    (LOCAL,),
    free="computed locally by Pulumi",
)

ENTRIES = (
    CLOUDFLARE_DNS_RECORD,
    CLOUDFLARE_ZONE_SETTING,
    CLOUDFLARE_RULESET,
    CLOUDFLARE_AUTHENTICATED_ORIGIN_PULLS_SETTINGS,
    CLOUDFLARE_ORIGIN_CA_CERTIFICATE,
    TLS_PRIVATE_KEY,
    TLS_CERT_REQUEST,
    RANDOM_PASSWORD,
    AWS_PROVIDER,
    RANDOM_ID,
    RANDOM_STRING,
    TLS_SELF_SIGNED_CERT,
)

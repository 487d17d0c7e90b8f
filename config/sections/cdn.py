"""`leanstack:cdn`: Cloudflare in front of the hosts, and the origin certificate it trusts."""

from __future__ import annotations

from dataclasses import dataclass

from leanstack.config.fields import HOSTNAME_ALLOWED, HOSTNAME_RE, Validated, setting


@dataclass(frozen=True)
class CdnArgs(Validated):
    """Cloudflare in front of the host, on an existing zone."""

    zone_id: str = setting(
        doc="Cloudflare zone id of the domain (32 hex characters; Cloudflare dashboard > Overview).",
        pattern=r"[0-9a-f]{32}",
        allowed="32 lower-case hex characters",
    )
    proxied: bool = setting(
        True,
        doc=(
            "Cloudflare proxies the hostnames (orange cloud). Off is for debugging only: the origin is "
            "then open to the internet on 443 and browsers will not trust its Cloudflare origin certificate."
        ),
    )
    static_paths: tuple[str, ...] = setting(
        ("/assets/", "/static/"),
        doc="Path prefixes of static files Cloudflare may cache, as long as the origin's Cache-Control says.",
        pattern=r"/[A-Za-z0-9._~/-]*/",
        allowed="path prefixes starting and ending with '/', such as /assets/",
    )
    zone_name: str = setting(
        "",
        doc="The Cloudflare zone's name (its apex, such as example.com); it decides which hostnames the zone's "
        "certificate covers. Empty: the last two labels of domain (three under a suffix such as co.uk).",
        pattern=f"({HOSTNAME_RE})?",
        allowed=HOSTNAME_ALLOWED + ", or empty",
    )
    advanced_certificate: bool = setting(
        False,
        doc="The zone has a certificate that covers names two or more levels under it (Cloudflare Advanced "
        "Certificate Manager or Total TLS, paid). Off: Universal SSL, which covers the zone's apex and its "
        "first-level names only, so hostnames deeper than that are refused.",
    )


# The Args of the OriginCertificate component, which the program fills in from the stack's hostnames.
@dataclass(frozen=True)
class OriginCertificateArgs(Validated):
    """The hostnames the Cloudflare origin certificate covers."""

    hostnames: tuple[str, ...] = setting(
        doc="Hostnames the origin certificate covers (the CDN's hostnames).",
        pattern=HOSTNAME_RE,
        allowed=HOSTNAME_ALLOWED,
    )

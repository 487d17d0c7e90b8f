"""Cdn: Cloudflare in front of the host, on an existing zone.

Builds, on the zone given by `zone_id`:
- proxied DNS records for each hostname (A to the host's Elastic IP, or, scaled out, CNAME to
  the load balancer's DNS name; Cloudflare flattens a CNAME at the apex), so visitors reach
  Cloudflare and only Cloudflare reaches the origin;
- zone settings: SSL mode "strict" (Cloudflare verifies the origin's certificate, the
  Cloudflare Origin CA one from OriginCertificate), always use HTTPS, minimum TLS 1.2;
- Authenticated Origin Pulls on the zone: Cloudflare presents its client certificate to
  the origin, which nginx requires, so a request that bypasses the CDN is refused;
- a cache rule for the static paths: every response there may be cached at the edge, for as
  long as the origin's Cache-Control says. nginx gives a fingerprinted file's successful
  response `public, max-age=31536000, immutable` (a year) when the app sent no Cache-Control;
  the app's own header (`private, no-store` on a per-user file), a 404's `no-store` and a
  redirect's TTL are kept, at the edge and in browsers, instead of being forced to a year.

Cost: nothing on Cloudflare's Free plan (all of the above is included).

The zone-level settings apply to the whole zone, not just these hostnames: if the zone
serves other sites, review them before the first `pulumi up`.

Example:
    cdn = Cdn("cdn", CdnArgs(zone_id="0123..."), hostnames=("example.com", "www.example.com"),
              origin=host.public_ip)
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_cloudflare as cloudflare

from leanstack.components.base import LeanComponent
from leanstack.config import CdnArgs

__all__ = ["Cdn", "CdnArgs"]


class Cdn(LeanComponent):
    def __init__(
        self,
        name: str,
        args: CdnArgs,
        *,
        hostnames: Sequence[str],
        origin: pulumi.Input[str],
        origin_is_hostname: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(name, opts)
        self.args = args
        self.hostnames = tuple(hostnames)
        self._create_records(origin, "CNAME" if origin_is_hostname else "A")
        self._set_zone_settings()
        self._cache_static_paths()
        self.register_outputs({"hostnames": list(self.hostnames)})

    def _create_records(self, origin: pulumi.Input[str], record_type: str) -> None:
        for hostname in self.hostnames:
            cloudflare.DnsRecord(
                self.child_name(hostname.replace(".", "-")),
                zone_id=self.args.zone_id,
                name=hostname,
                type=record_type,
                content=origin,
                proxied=self.args.proxied,
                ttl=1,  # 1 = automatic, required for proxied records
                comment="leanstack: the proxy host",
                opts=self.child_opts(),
            )

    def _set_zone_settings(self) -> None:
        for setting_id, value in (("ssl", "strict"), ("always_use_https", "on"), ("min_tls_version", "1.2")):
            cloudflare.ZoneSetting(
                self.child_name(setting_id.replace("_", "-")),
                zone_id=self.args.zone_id,
                setting_id=setting_id,
                value=value,
                opts=self.child_opts(),
            )
        cloudflare.AuthenticatedOriginPullsSettings(
            self.child_name("origin-pulls"),
            zone_id=self.args.zone_id,
            enabled=True,
            opts=self.child_opts(),
        )

    def _cache_static_paths(self) -> None:
        """Cache eligibility for the static paths; how long is always the origin's decision.

        Not `override_origin`: that ignores the origin's Cache-Control, so a per-user file the
        app marks `private, no-store`, a 404 or a redirect would be kept for a year. Not a
        status-code TTL for 200 either: Cloudflare applies it over the origin's header too.
        The year comes from nginx's header on fingerprinted files (see nginx.conf.j2).
        """
        paths = " or ".join(f'starts_with(http.request.uri.path, "{p}")' for p in self.args.static_paths)
        cloudflare.Ruleset(
            self.child_name("cache-rules"),
            zone_id=self.args.zone_id,
            name="leanstack cache rules",
            description="Cache static files for as long as the origin says",
            kind="zone",
            phase="http_request_cache_settings",
            rules=[
                cloudflare.RulesetRuleArgs(
                    ref="leanstack_static_assets",
                    description="Static files: eligible for the edge cache; TTLs from the origin's Cache-Control",
                    expression=f"({paths})",
                    action="set_cache_settings",
                    action_parameters=cloudflare.RulesetRuleActionParametersArgs(
                        cache=True,
                        edge_ttl=cloudflare.RulesetRuleActionParametersEdgeTtlArgs(mode="respect_origin"),
                        browser_ttl=cloudflare.RulesetRuleActionParametersBrowserTtlArgs(mode="respect_origin"),
                    ),
                    enabled=True,
                )
            ],
            opts=self.child_opts(),
        )

"""OriginCertificate: the TLS certificate the host presents to Cloudflare.

Builds a private key and a certificate signing request (pulumi-tls; both Pulumi secrets,
encrypted in the state) and a Cloudflare Origin CA certificate for the stack's hostnames.
Cloudflare's edge trusts that CA in SSL mode "strict"; browsers do not, which is fine
because only Cloudflare talks to the origin. The host fetches the certificate and key at
boot from SSM Parameter Store (see ProxyHost), so they are never inlined in user data.

Cost: nothing. The certificate is valid for 15 years; replacing it (e.g. by adding a
hostname) issues a new one and replaces the SSM parameters and the host.

Example:
    cert = OriginCertificate("origin-cert", OriginCertificateArgs(hostnames=("example.com", "www.example.com")))
"""

from __future__ import annotations

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_tls as tls

from leanstack.components.base import LeanComponent
from leanstack.config import OriginCertificateArgs

# 15 years: the longest Cloudflare offers, so nobody has to remember a renewal.
VALIDITY_DAYS = 5475


class OriginCertificate(LeanComponent):
    certificate_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]

    def __init__(self, name: str, args: OriginCertificateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        key = tls.PrivateKey(self.child_name("key"), algorithm="ECDSA", ecdsa_curve="P256", opts=self.child_opts())
        request = tls.CertRequest(
            self.child_name("csr"),
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=args.hostnames[0], organization="leanstack origin"),
            dns_names=list(args.hostnames),
            opts=self.child_opts(),
        )
        certificate = cloudflare.OriginCaCertificate(
            self.child_name("cert"),
            csr=request.cert_request_pem,
            hostnames=list(args.hostnames),
            request_type="origin-ecc",
            requested_validity=VALIDITY_DAYS,
            opts=self.child_opts(),
        )
        self.private_key, self.certificate = key, certificate
        self.certificate_pem = certificate.certificate
        self.private_key_pem = pulumi.Output.secret(key.private_key_pem)
        self.register_outputs({})

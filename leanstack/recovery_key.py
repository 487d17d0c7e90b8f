"""`python -m leanstack recovery-key new`: the stack's recovery keypair, made here, offline.

The private half is printed once, for the owner's password manager, and is kept nowhere
else: no file, no AWS. The public half, one line of base64 (DER SubjectPublicKeyInfo),
goes into the stack config; the host seals the app's config and secrets to it daily
(host/agent/seal.py) and only the private half opens them
(`python -m leanstack secrets restore STACK --from-backup`).

RSA 4096: the host seals with the openssl program (RSA-OAEP wrapping), which every host
has, and 4096 bits keeps the sealed copies safe for as long as backups are kept.
"""

from __future__ import annotations

import base64
import sys
from typing import TextIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from leanstack.host.agent.seal import key_id

KEY_BITS = 4096


def new_keypair() -> tuple[str, str]:
    """(private key PEM, public key as one base64 line)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, base64.b64encode(public_der).decode("ascii")


def print_new(out: TextIO | None = None) -> int:
    out = out or sys.stdout
    private_pem, public_line = new_keypair()
    identifier = key_id(base64.b64decode(public_line))
    out.write(
        f"Recovery key {identifier} (RSA {KEY_BITS}).\n\n"
        "PRIVATE half: store it now in the owner's password manager (and the second person's).\n"
        "It is printed only this once and kept nowhere else; without it the sealed copies of\n"
        "the app's secrets cannot be opened. Never put it in the repository or in AWS.\n\n"
        f"{private_pem}\n"
        "PUBLIC half: the stack config's recovery public key (safe to commit):\n\n"
        f"{public_line}\n"
    )
    return 0

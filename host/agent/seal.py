"""The sealed format (leanstack/sealed.py opens what this writes): the recovery public key,
the RSA-OAEP-wrapped keys, `openssl enc` and the HMAC over header and ciphertext.
Standard library and the openssl program only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import subprocess
import tempfile
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional

if TYPE_CHECKING:
    pass

from . import contract
from .common import ConfigError, Failure

FORMAT = "leanstack-sealed/1"
PBKDF2_ITERATIONS = 10000
SEALED_PREFIX = contract.SEALED_PREFIX
OAEP_OPTIONS = ("rsa_padding_mode:oaep", "rsa_oaep_md:sha256", "rsa_mgf1_md:sha256")
# Minimum RSA modulus: a recovery key is 4096 bits; nothing below 3072 is accepted.
MIN_KEY_BITS = 3072


# ---------------------------------------------------------------------------------------
# The sealed format (leanstack/sealed.py opens what this writes)


def public_key_der(text: str) -> bytes:
    """The DER SubjectPublicKeyInfo from its one-line base64 form or from PEM."""
    body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
    try:
        der = base64.b64decode(body.replace(" ", ""), validate=True)
    except ValueError:
        raise ConfigError("RECOVERY_PUBLIC_KEY is not base64 (python -m leanstack recovery-key new)") from None
    if len(der) < 64 or der[0] != 0x30:
        raise ConfigError("RECOVERY_PUBLIC_KEY is not a public key (python -m leanstack recovery-key new)")
    return der


def key_id(der: bytes) -> str:
    """Names the recovery key without revealing anything: the SPKI's SHA-256, shortened."""
    return hashlib.sha256(der).hexdigest()[:16]


def public_key_pem(der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[index : index + 64] for index in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def mac_input(header: Mapping[str, str], ciphertext: str) -> bytes:
    """What the MAC covers: every header field the opener trusts, then the ciphertext."""
    fields = [FORMAT, header["key_id"], header["stack"], header["created"], header["wrapped_key"], ciphertext]
    return "\n".join(fields).encode("utf-8")


def _openssl(openssl: str, arguments: List[str], data: bytes, password: Optional[bytes] = None) -> bytes:
    read_end = write_end = -1
    if password is not None:
        read_end, write_end = os.pipe()
        os.write(write_end, password + b"\n")
        os.close(write_end)
        arguments = [*arguments, "-pass", f"fd:{read_end}"]
    try:
        done = subprocess.run(
            [openssl, *arguments],
            input=data,
            capture_output=True,
            check=False,
            timeout=60,
            pass_fds=(read_end,) if password is not None else (),
        )
    finally:
        if password is not None:
            os.close(read_end)
    if done.returncode != 0:
        last = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        raise Failure(f"openssl {arguments[0]} failed: {last}")
    return done.stdout


def seal(plaintext: bytes, public_key: str, stack: str, created: str, openssl: str = "openssl") -> Dict[str, str]:
    der = public_key_der(public_key)
    secret = os.urandom(64)
    with tempfile.TemporaryDirectory(prefix="leanstack-seal-") as work:
        key_file = os.path.join(work, "recovery.pub.pem")
        with open(key_file, "w", encoding="ascii") as handle:
            handle.write(public_key_pem(der))
        # An RSA key's text starts "Public-Key: (4096 bit)" and has a "Modulus:".
        text = _openssl(openssl, ["pkey", "-pubin", "-in", key_file, "-noout", "-text"], b"").decode("ascii", "replace")
        size = re.search(r"Public-Key: \((\d+) bit\)", text)
        if "Modulus:" not in text or size is None or int(size.group(1)) < MIN_KEY_BITS:
            raise ConfigError(f"RECOVERY_PUBLIC_KEY must be an RSA key of at least {MIN_KEY_BITS} bits")
        options = [argument for option in OAEP_OPTIONS for argument in ("-pkeyopt", option)]
        wrapped = _openssl(openssl, ["pkeyutl", "-encrypt", "-pubin", "-inkey", key_file, *options], secret)
    ciphertext = _openssl(
        openssl,
        ["enc", "-aes-256-cbc", "-pbkdf2", "-iter", str(PBKDF2_ITERATIONS), "-md", "sha256", "-salt"],
        plaintext,
        password=secret[:32].hex().encode("ascii"),
    )
    header = {
        "format": FORMAT,
        "key_id": key_id(der),
        "stack": stack,
        "created": created,
        "wrapped_key": base64.b64encode(wrapped).decode("ascii"),
    }
    encoded = base64.b64encode(ciphertext).decode("ascii")
    tag = hmac.new(secret[32:], mac_input(header, encoded), hashlib.sha256).digest()
    return {**header, "ciphertext": encoded, "mac": base64.b64encode(tag).decode("ascii")}


def bundle_key(prefix: str, stack: str, stamp: str) -> str:
    return "/".join(part for part in (prefix.strip("/"), stack, f"{stamp}.json") if part)

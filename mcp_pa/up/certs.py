"""A development certificate authority and a server certificate for localhost, made with `cryptography`.

`mcp-pa up` and the compose `certs` service call `ensure_dev_certs(directory)`: the files are
made once and reused while they are valid, so clients that trust the CA keep trusting it
across restarts. Never use these certificates in production.

Run alone: `python -m mcp_pa.up.certs DIR [--host NAME ...]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "tls.crt"  # the names Kubernetes TLS secrets use, so one layout fits every deployment
SERVER_KEY = "tls.key"
CA_DAYS = 3650
SERVER_DAYS = 825  # the longest lifetime Apple clients accept for a TLS server certificate
RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class DevCerts:
    """Paths of the dev CA certificate and of the server certificate and key it signed."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write(path: Path, data: bytes, mode: int) -> None:
    # Create with the final mode so a private key is never readable by others, not even briefly.
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _make_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcp-pa development CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / CA_KEY, _key_pem(key), 0o600)
    _write(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _make_server(
    directory: Path,
    hosts: Sequence[str],
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key_mode: int,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory / SERVER_KEY, _key_pem(key), key_mode)
    _write(directory / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    cert = _load_cert(directory / CA_CERT)
    try:
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if cert is None or not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.public_key() != key.public_key() or cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return None
    return cert, key


def server_cert_problem(directory: Path, hosts: Sequence[str], ca_cert: x509.Certificate) -> str | None:
    """Why the server certificate in `directory` cannot be reused, or None when it can."""
    cert = _load_cert(directory / SERVER_CERT)
    if cert is None:
        return "missing or unreadable"
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "not signed by the dev CA"
    if cert.not_valid_after_utc - RENEW_BEFORE < _now():
        return "expires soon"
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "no subject alternative names"
    present = set(names.get_values_for_type(x509.DNSName)) | {
        str(ip) for ip in names.get_values_for_type(x509.IPAddress)
    }
    missing = {str(_san(h).value) for h in hosts} - present
    if missing:
        return f"does not cover {', '.join(sorted(missing))}"
    try:
        key = serialization.load_pem_private_key((directory / SERVER_KEY).read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return "key missing or unreadable"
    if key.public_key() != cert.public_key():
        return "key does not match the certificate"
    return None


def ensure_dev_certs(directory: Path, hosts: Sequence[str] = DEFAULT_HOSTS, key_mode: int = 0o600) -> DevCerts:
    """Make (or reuse, when still valid) a dev CA and a server certificate for `hosts` in `directory`.

    `key_mode` 0o644 is for a shared volume whose reader (Envoy in compose) runs as another user.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = _load_ca(directory)
    if ca is None:
        ca = _make_ca(directory)
        _make_server(directory, hosts, *ca, key_mode)
    elif server_cert_problem(directory, hosts, ca[0]) is not None:
        _make_server(directory, hosts, *ca, key_mode)
    else:
        (directory / SERVER_KEY).chmod(key_mode)
    return DevCerts(directory / CA_CERT, directory / SERVER_CERT, directory / SERVER_KEY)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mcp_pa.up.certs DIR`: the compose one-shot service and anyone wanting dev certs."""
    parser = argparse.ArgumentParser(prog="python -m mcp_pa.up.certs", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--host", action="append", dest="hosts", help="DNS name or IP (repeatable)")
    parser.add_argument(
        "--readable-key", action="store_true",
        help="make the server key readable by other users (a volume shared with Envoy running as another uid)",
    )
    parser.add_argument(
        "--keep-existing", action="store_true",
        help="leave a tls.crt/tls.key pair already in DIR alone (a certificate you mounted yourself)",
    )
    args = parser.parse_args(argv)
    if args.keep_existing and (args.directory / SERVER_CERT).exists() and (args.directory / SERVER_KEY).exists():
        print(f"keeping the certificate already in {args.directory}")
        return 0
    hosts = tuple(dict.fromkeys([*DEFAULT_HOSTS, *(args.hosts or [])]))
    certs = ensure_dev_certs(args.directory, hosts, 0o644 if args.readable_key else 0o600)
    print(f"dev CA: {certs.ca_cert}\nserver certificate: {certs.server_cert} ({', '.join(hosts)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The development CA and server certificate: valid for localhost, reused, renewed when unusable."""

from __future__ import annotations

import datetime as dt
import ssl
import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from mcp_pa.up import certs


def _sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(names.get_values_for_type(x509.DNSName)) | {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}


def test_server_certificate_covers_localhost_and_loopback_and_chains_to_the_ca(tmp_path: Path) -> None:
    made = certs.ensure_dev_certs(tmp_path)
    assert _sans(made.server_cert) == {"localhost", "127.0.0.1", "::1"}
    # The standard library's verifier accepts the chain, as clients trusting the CA will.
    ctx = ssl.create_default_context(cafile=str(made.ca_cert))
    ctx.load_cert_chain(made.server_cert, made.server_key)
    leaf = x509.load_pem_x509_certificate(made.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(made.ca_cert.read_bytes())
    leaf.verify_directly_issued_by(ca)
    assert leaf.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=365)


def test_private_keys_are_owner_only_by_default(tmp_path: Path) -> None:
    made = certs.ensure_dev_certs(tmp_path)
    assert stat.S_IMODE(made.server_key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / certs.CA_KEY).stat().st_mode) == 0o600


def test_valid_certificates_are_reused_not_remade(tmp_path: Path) -> None:
    first = certs.ensure_dev_certs(tmp_path)
    before = (first.ca_cert.read_bytes(), first.server_cert.read_bytes())
    second = certs.ensure_dev_certs(tmp_path)
    assert (second.ca_cert.read_bytes(), second.server_cert.read_bytes()) == before


def test_a_new_host_name_reissues_the_server_certificate_under_the_same_ca(tmp_path: Path) -> None:
    first = certs.ensure_dev_certs(tmp_path)
    ca_before = first.ca_cert.read_bytes()
    second = certs.ensure_dev_certs(tmp_path, (*certs.DEFAULT_HOSTS, "mcp.test"))
    assert second.ca_cert.read_bytes() == ca_before
    assert "mcp.test" in _sans(second.server_cert)


def test_a_corrupt_server_certificate_is_replaced(tmp_path: Path) -> None:
    made = certs.ensure_dev_certs(tmp_path)
    made.server_cert.write_text("not a certificate")
    assert certs.server_cert_problem(tmp_path, certs.DEFAULT_HOSTS, x509.load_pem_x509_certificate(made.ca_cert.read_bytes()))
    again = certs.ensure_dev_certs(tmp_path)
    assert _sans(again.server_cert) == {"localhost", "127.0.0.1", "::1"}


def test_a_server_key_that_does_not_match_is_replaced(tmp_path: Path) -> None:
    made = certs.ensure_dev_certs(tmp_path)
    other = certs.ensure_dev_certs(tmp_path / "other")
    made.server_key.write_bytes(other.server_key.read_bytes())
    ca = x509.load_pem_x509_certificate(made.ca_cert.read_bytes())
    assert certs.server_cert_problem(tmp_path, certs.DEFAULT_HOSTS, ca) == "key does not match the certificate"
    certs.ensure_dev_certs(tmp_path)
    assert certs.server_cert_problem(tmp_path, certs.DEFAULT_HOSTS, ca) is None


def test_cli_keeps_a_mounted_certificate_and_makes_a_readable_key_for_compose(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "mcp_pa.up.certs", str(tmp_path), "--keep-existing", "--readable-key"]
    subprocess.run(run, check=True, capture_output=True)
    key = tmp_path / certs.SERVER_KEY
    assert stat.S_IMODE(key.stat().st_mode) == 0o644
    (tmp_path / certs.SERVER_CERT).write_text("my own certificate")
    out = subprocess.run(run, check=True, capture_output=True, text=True).stdout
    assert "keeping" in out
    assert (tmp_path / certs.SERVER_CERT).read_text() == "my own certificate"

"""The committed ext_authz gencode is fresh, and speaks Envoy's wire format (envoy-data-plane)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from envoy_data_plane.envoy.config.core import v3 as dp_core
from envoy_data_plane.envoy.service.auth import v3 as dp_auth
from envoy_data_plane.envoy.type import v3 as dp_type

from authz_service import response
from authz_service.errors import InsufficientScope, ProviderUnavailable
from authz_service.proto import build, external_auth_pb2
from mcp_pa.core.contract import Identity


def test_committed_generated_code_matches_the_proto_sources(tmp_path: Path) -> None:
    generated = build.generate(tmp_path)
    assert generated, "protoc produced nothing"
    committed_dir = build.REPO / "authz_service" / "proto"
    stale = [p.name for p in generated if (committed_dir / p.name).read_bytes() != p.read_bytes()]
    extra = {p.name for p in committed_dir.glob("*_pb2*.py*")} - {p.name for p in generated}
    assert not stale and not extra, f"regenerate with `python -m authz_service.proto.build`: stale={stale} extra={extra}"


def test_generated_modules_keep_envoy_package_names() -> None:
    assert external_auth_pb2.CheckRequest.DESCRIPTOR.full_name == "envoy.service.auth.v3.CheckRequest"
    service = external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"]
    assert service.full_name == "envoy.service.auth.v3.Authorization"


def test_their_check_request_decodes_with_ours_with_every_field_intact() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)
    peer = dp_auth.AttributeContextPeer(
        address=dp_core.Address(socket_address=dp_core.SocketAddress(address="10.0.0.7", port_value=51234)),
        service="client-svc",
        labels={"app": "cli"},
        principal="spiffe://client",
        certificate="PEM",
    )
    theirs = dp_auth.CheckRequest(
        attributes=dp_auth.AttributeContext(
            source=peer,
            destination=dp_auth.AttributeContextPeer(address=dp_core.Address(pipe=dp_core.Pipe(path="/run/envoy.sock"))),
            request=dp_auth.AttributeContextRequest(
                time=when,
                http=dp_auth.AttributeContextHttpRequest(
                    id="req-42",
                    method="POST",
                    headers={"authorization": "Bearer abc", "mcp-method": "tools/call"},
                    header_map=dp_core.HeaderMap(headers=[dp_core.HeaderValue(key="x-api-key", raw_value=b"k1")]),
                    path="/mcp?x=1",
                    host="mcp.example.com",
                    scheme="https",
                    query="x=1",
                    fragment="frag",
                    size=123,
                    protocol="HTTP/2",
                    body="{}",
                    raw_body=b"\x00\x01",
                ),
            ),
            context_extensions={"route": "mcp"},
            tls_session=dp_auth.AttributeContextTlsSession(sni="mcp.example.com"),
        )
    )
    ours = external_auth_pb2.CheckRequest.FromString(bytes(theirs))
    a = ours.attributes
    assert a.source.address.socket_address.address == "10.0.0.7"
    assert a.source.address.socket_address.port_value == 51234
    assert (a.source.service, dict(a.source.labels), a.source.principal, a.source.certificate) == ("client-svc", {"app": "cli"}, "spiffe://client", "PEM")
    assert a.destination.address.pipe.path == "/run/envoy.sock"
    assert a.request.time.ToDatetime(dt.timezone.utc) == when
    h = a.request.http
    assert (h.id, h.method, h.path, h.host, h.scheme, h.query, h.fragment, h.size, h.protocol, h.body, h.raw_body) == (
        "req-42", "POST", "/mcp?x=1", "mcp.example.com", "https", "x=1", "frag", 123, "HTTP/2", "{}", b"\x00\x01"
    )
    assert dict(h.headers) == {"authorization": "Bearer abc", "mcp-method": "tools/call"}
    assert [(v.key, v.raw_value) for v in h.header_map.headers] == [("x-api-key", b"k1")]
    assert dict(a.context_extensions) == {"route": "mcp"}
    assert a.tls_session.sni == "mcp.example.com"
    # Nothing was skipped as unknown: re-encoding ours gives theirs back.
    assert dp_auth.CheckRequest.parse(ours.SerializeToString()) == theirs


def test_our_ok_response_decodes_with_theirs_with_every_field_intact() -> None:
    identity = Identity("google:1", "example_com", frozenset({"read", "write"}), "google", "a@example.com", "Zoë")
    ours = response.allow(identity)
    theirs = dp_auth.CheckResponse.parse(ours.SerializeToString())
    assert theirs.status.code == 0
    assert theirs.ok_response is not None and theirs.denied_response is None
    expected = identity.to_headers()
    got = {h.header.key: h.header.value for h in theirs.ok_response.headers}
    assert got == expected
    for h in theirs.ok_response.headers:
        assert h.append is False  # betterproto2 unwraps google.protobuf.BoolValue; unset would be None
        assert h.append_action == dp_core.HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD
    assert theirs.ok_response.headers_to_remove == ["authorization", "x-api-key"]
    assert bytes(theirs) == ours.SerializeToString()


def test_our_denied_responses_decode_with_theirs_with_every_field_intact() -> None:
    responder = response.Responder("https://mcp.example.com")
    for denied, status, code in [
        (InsufficientScope("needs write", "write"), dp_type.StatusCode.Forbidden, 7),
        (ProviderUnavailable("down", retry_after=9), dp_type.StatusCode.ServiceUnavailable, 14),
    ]:
        ours = responder.deny(denied)
        theirs = dp_auth.CheckResponse.parse(ours.SerializeToString())
        assert theirs.status.code == code
        assert theirs.denied_response.status.code == status
        assert theirs.denied_response.body == ours.denied_response.body
        assert [(h.header.key, h.header.value) for h in theirs.denied_response.headers] == [
            (h.header.key, h.header.value) for h in ours.denied_response.headers
        ]
        assert bytes(theirs) == ours.SerializeToString()

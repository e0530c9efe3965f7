"""`python -m transports.grpc.probe HOST:PORT`: exit 0 if grpc.health.v1 says SERVING (container healthchecks).

Plaintext only; with TLS use `grpc_health_probe` and the peer certificates.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    import grpc

    from transports.grpc import health_pb2, health_pb2_grpc

    address = (argv if argv is not None else sys.argv[1:] or ["127.0.0.1:50055"])[0]
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    except grpc.RpcError as exc:
        print(f"{address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    print(f"{address}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())

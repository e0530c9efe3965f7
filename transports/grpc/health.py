"""grpc.health.v1 for the coordinator and workers: SERVING while up, NOT_SERVING while shutting down."""

from __future__ import annotations

import threading

import grpc

from transports.grpc import health_pb2, health_pb2_grpc

__all__ = ["HealthServicer", "SERVICE_NAME", "serve_health"]

SERVICE_NAME = "coordinator.v1.CoordinatorService"


class HealthServicer(health_pb2_grpc.HealthServicer):
    """grpc.health.v1: SERVING for "" and our service while up, NOT_SERVING once shutting down."""

    def __init__(self, services: tuple[str, ...] = ("", SERVICE_NAME)) -> None:
        self._services = services
        self._serving = threading.Event()
        self._serving.set()
        self._changed = threading.Event()

    def set_serving(self, serving: bool) -> None:
        if serving:
            self._serving.set()
        else:
            self._serving.clear()
        self._changed.set()

    def _status(self, service: str) -> int:
        if service not in self._services:
            return health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        return health_pb2.HealthCheckResponse.SERVING if self._serving.is_set() else health_pb2.HealthCheckResponse.NOT_SERVING

    def Check(self, request, context):  # noqa: N802 (gRPC names)
        status = self._status(request.service)
        if status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    def Watch(self, request, context):  # noqa: N802
        last = None
        while context.is_active():
            status = self._status(request.service)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            self._changed.wait(1.0)


def serve_health(address: str, services: tuple[str, ...] = ("",)) -> tuple[grpc.Server, HealthServicer, int]:
    """A plaintext gRPC server with only the health service (a worker's `--health-port`).

    Raises:
        OSError: the address cannot be bound.
    """
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="health"))
    health = HealthServicer(services)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind the health server to {address}")
    server.start()
    return server, health, port

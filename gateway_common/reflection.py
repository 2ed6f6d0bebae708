"""Server reflection that also resolves method symbols.

ghz and grpcurl ask reflection for the file containing ``pkg.Service.Method``;
protobuf's upb descriptor pool only knows message/service/enum symbols, so the
stock servicer answers NOT_FOUND. We fall back to the enclosing service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer


class MethodAwareReflection(ReflectionServicer):
    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        name = fully_qualified_name
        pool: Any = self._pool  # type: ignore[attr-defined]
        try:
            pool.FindFileContainingSymbol(name)
        except KeyError:
            parent = name.rpartition(".")[0]
            try:
                pool.FindServiceByName(parent)
            except KeyError:
                pass
            else:
                name = parent
        return super()._file_containing_symbol(request, name)  # type: ignore[misc]


def enable(service_names: Sequence[str], server: grpc.aio.Server) -> None:
    names = [*service_names, reflection.SERVICE_NAME]
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(  # type: ignore[no-untyped-call]
        MethodAwareReflection(names), server
    )

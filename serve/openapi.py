"""Wire shapes that the handlers cannot state in their signatures, added to the OpenAPI document.

The market's handlers read their bodies raw (the core parses them, with its own refusal
reasons and precedence) and return the dicts serve.market builds; a route states its shapes in
its `opt` with `shapes(body=..., ok=...)` and `describe(app)` writes them into the generated
document once, when the application is built: the request body, the success response (its
status from the handler).
Schemas are msgspec's own JSON Schema of the Structs (serve/market_schemas.py), under
components/schemas.
"""

from __future__ import annotations

from typing import Any, Final, cast

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIType

BODY_OPT: Final = "aex_body"
OK_OPT: Final = "aex_ok"
TEXTS_OPT: Final = "aex_texts"
REF_TEMPLATE: Final = "#/components/schemas/{name}"


def shapes(
    *, body: Any = None, ok: Any = None, example: Any = None, texts: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A route's `opt` entries: its request body Struct (with an example), its success
    response type (a Struct or list[Struct]) and the text media types it may answer instead
    (a PEM, a compact JWT)."""
    opt: dict[str, Any] = {}
    if texts:
        opt[TEXTS_OPT] = texts
    if body is not None:
        opt[BODY_OPT] = (body, example)
    if ok is not None:
        opt[OK_OPT] = ok
    return opt


def describe(app: Litestar) -> None:
    """Writes every route's declared shapes into the app's OpenAPI document."""
    described: list[tuple[Operation, Any, Any, Any, int]] = []
    openapi = app.plugins.get(OpenAPIPlugin).provide_openapi()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not {BODY_OPT, OK_OPT, TEXTS_OPT} & set(handler.opt):
                continue
            item = (openapi.paths or {}).get(route.path_format)
            assert item is not None, route.path_format
            for method in handler.http_methods:
                operation = getattr(item, method.lower(), None)
                assert isinstance(operation, Operation), (method, route.path_format)
                body, example = handler.opt.get(BODY_OPT, (None, None))
                described.append(
                    (operation, body, example, handler.opt.get(OK_OPT), handler.status_code)
                )
                _add_texts(operation, handler.status_code, handler.opt.get(TEXTS_OPT, ()))
    types = [t for _, body, _, ok, _ in described for t in (body, ok) if t is not None]
    refs, components = msgspec.json.schema_components(types, ref_template=REF_TEMPLATE)
    found = dict(zip(map(id, types), refs, strict=True))
    assert openapi.components is not None
    schemas = cast(dict[str, Any], openapi.components.schemas)
    for name, schema in components.items():
        assert name not in schemas or schemas[name] == schema, f"schema name taken: {name}"
        schemas[name] = schema
    for operation, body, example, ok, status in described:
        if body is not None:
            media = OpenAPIMediaType(schema=cast(Schema, found[id(body)]))
            if example is not None:
                media.example = example
            operation.request_body = RequestBody(content={"application/json": media}, required=True)
        if ok is not None:
            responses = operation.responses or {}
            current = responses.get(str(status))
            description = current.description if isinstance(current, OpenAPIResponse) else "OK"
            response = OpenAPIResponse(
                description=description or "OK",
                content={"application/json": OpenAPIMediaType(schema=cast(Schema, found[id(ok)]))},
                headers=current.headers if isinstance(current, OpenAPIResponse) else None,
            )
            responses[str(status)] = response
            operation.responses = responses


def _add_texts(operation: Operation, status: int, texts: tuple[str, ...]) -> None:
    response = (operation.responses or {}).get(str(status))
    if not texts or not isinstance(response, OpenAPIResponse):
        return
    content = dict(response.content or {})
    for media_type in texts:
        content[media_type] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
    response.content = content

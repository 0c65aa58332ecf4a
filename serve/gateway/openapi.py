"""Wire shapes that the handlers cannot state in their signatures, added to the OpenAPI document.

The market's handlers read their bodies raw (the core parses them, with its own refusal
reasons and precedence) and return the dicts serve.market.usecases builds; a route states its shapes
in its `opt` with `shapes(body=..., ok=...)` and `describe(app)` writes them into the generated
document once, when the application is built: the request body, the success response (its
status from the handler).
Schemas are msgspec's own JSON Schema of the Structs (serve/market/schemas.py), under
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
PROBLEMS_OPT: Final = "aex_problems"
REF_TEMPLATE: Final = "#/components/schemas/{name}"


def shapes(
    *,
    body: Any = None,
    ok: Any = None,
    example: Any = None,
    texts: tuple[str, ...] = (),
    problems: tuple[int, ...] = (),
) -> dict[str, Any]:
    """A route's `opt` entries: its request body Struct (with an example), its success
    response type (a Struct or list[Struct]), the text media types it may answer instead
    (a PEM, a compact JWT) and the problem statuses it answers beyond what its kind implies
    (`narrow_problems`: e.g. 409 on a read that waits for a state)."""
    opt: dict[str, Any] = {}
    if problems:
        opt[PROBLEMS_OPT] = problems
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


# Problem statuses by where they can come from (serve/gateway/middleware.py,
# serve/gateway/problems.py):
_CREDENTIAL: Final = frozenset({"401", "403"})  # only where a credential is needed
_WRITE_ONLY: Final = frozenset({"400", "409", "413"})  # Idempotency-Key, in-flight, body size
_THROTTLED: Final = frozenset({"429"})  # every route but /health and /ready
_INPUT: Final = frozenset({"422"})  # a body or a parameter to refuse
_WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def narrow_problems(app: Litestar, *, unlimited: frozenset[tuple[str, str]]) -> None:
    """Each operation lists the problem responses it can answer, not all eleven.

    From what the route is: 401/403 only where it needs a credential (its `security`; 401 on
    a public template with parameters too), 400 (a malformed Idempotency-Key), 409 and 413
    only on writes, 422 on writes (a body) and where there is a parameter to refuse, 429
    except on the `unlimited` routes; 404, 500, 503 and 504 everywhere. A route adds the
    others it answers with `shapes(problems=...)`.
    """
    openapi = app.plugins.get(OpenAPIPlugin).provide_openapi()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            item = (openapi.paths or {}).get(route.path_format)
            if item is None or handler.opt.get("exclude_from_schema"):
                continue
            for method in handler.http_methods:
                operation = getattr(item, method.lower(), None)
                if not isinstance(operation, Operation) or not operation.responses:
                    continue
                dropped: set[str] = set()
                if not operation.security:
                    # A public template whose paths the gateway reads by prefix (a certificate
                    # is public by its `cert_` id) still answers 401 to the other paths.
                    dropped |= _CREDENTIAL if "{" not in route.path_format else {"403"}
                if method not in _WRITES:
                    dropped |= _WRITE_ONLY
                if (method, route.path_format) in unlimited:
                    dropped |= _THROTTLED
                if method not in _WRITES and not operation.parameters:
                    dropped |= _INPUT  # a write reads a body (described or raw)
                dropped -= {str(status) for status in handler.opt.get(PROBLEMS_OPT, ())}
                operation.responses = {
                    status: response
                    for status, response in operation.responses.items()
                    if status not in dropped
                }

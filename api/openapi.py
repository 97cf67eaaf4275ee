"""The OpenAPI document as the service really answers, so that a client generated from it accepts every answer.

BentoML 1.4 generates an OpenAPI 3.0 document that (1) writes nullable fields as ``{"type": "null"}``, which 3.0
does not know (a generated client rejects ``"label": null``), and (2) lists 400/404/500 for the API routes while
the service answers 401, 413, 422, 429 and 503 there (``api.http``, ``api.security``) and never 400 or 404.
:func:`truthful` rewrites the generated document; :class:`TruthfulOpenAPI` serves it in place of BentoML's.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from api.http import ASGIApp, Message, Receive, Scope, Send

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "detail": {}},
    "description": "Why the request was refused; never a stack trace",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
PREDICTION_ERRORS = {
    "401": "Missing or invalid API key (only when keys are configured)",
    "413": "Request body larger than service.max_request_bytes",
    "415": "A form content type (multipart/*, application/x-www-form-urlencoded): the body must be JSON",
    "422": "Not a valid request: not JSON, missing or mistyped field, empty or blank text, too many texts",
    "429": "Rate limit of this key or client exceeded",
    "503": "Overloaded: more requests in flight than service.max_in_flight_requests",
}
READY_BODY = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "model": {"type": "string"}, "reason": {"type": "string"}},
}


def _nullable(node: Any, schemas: dict[str, Any]) -> Any:
    """OpenAPI 3.0 has no null type: ``anyOf: [X, {type: null}]`` becomes X inlined with ``nullable: true`` (and
    ``null`` among its ``enum`` values), the form 3.0 validators and client generators understand."""
    if isinstance(node, list):
        return [_nullable(n, schemas) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v, schemas) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            del out[key]
            if len(rest) == 1:
                only = rest[0]
                ref = only.get("$ref", "")
                out.update(dict(schemas[ref.rsplit("/", 1)[-1]]) if ref.startswith("#/components/schemas/") else only)
                if "enum" in out:
                    out["enum"] = [*out["enum"], None]
            else:
                out[key] = rest
            out["nullable"] = True
    return out


def _error(description: str, code: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if code in ("429", "503"):
        response["headers"] = RETRY_AFTER
    return response


def truthful(spec: dict[str, Any], answers: dict[str, type[BaseModel]]) -> dict[str, Any]:
    """``answers``: the model each prediction path answers 200 with (BentoML's inline copy drops nullability)."""
    spec = json.loads(json.dumps(spec))
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for path, model in answers.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        for op in spec.get("paths", {}).get(path, {}).values():
            op["responses"]["200"]["content"] = {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            }
    prediction_paths = frozenset(answers)
    doc: dict[str, Any] = _nullable(spec, schemas)
    doc.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, ops in doc.get("paths", {}).items():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            if path in prediction_paths:
                if "requestBody" in op:
                    op["requestBody"]["required"] = True
                for code in ("400", "404", "500"):
                    responses.pop(code, None)
                responses.update({code: _error(text, code) for code, text in PREDICTION_ERRORS.items()})
            elif path in ("/ready", "/readyz"):
                ok = {
                    "description": "Ready: the model is loaded and the batcher warmed up",
                    "content": {"application/json": {"schema": READY_BODY}},
                }
                responses["200"] = ok if path == "/ready" else responses.get("200", ok)
                responses["503"] = (
                    {
                        "description": "Not ready: no model, or the model runner is down or hung",
                        "content": {"application/json": {"schema": READY_BODY}},
                    }
                    if path == "/ready"
                    else {"description": "Not ready"}
                )
            elif path == "/model/info":
                responses["503"] = _error("No model loaded", "503")
    return doc


class TruthfulOpenAPI:
    """ASGI middleware: answers ``GET /docs.json`` with :func:`truthful` applied to what BentoML generates."""

    def __init__(self, app: ASGIApp, answers: dict[str, type[BaseModel]], path: str = "/docs.json") -> None:
        self.app = app
        self.answers = answers
        self.path = path
        self._doc: bytes | None = None  # the routes do not change while the process runs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        if self._doc is None:
            messages: list[Message] = []

            async def keep(message: Message) -> None:
                messages.append(message)

            await self.app(scope, receive, keep)
            if messages[0].get("status") != 200:
                for m in messages:
                    await send(m)
                return
            body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
            self._doc = json.dumps(truthful(json.loads(body), self.answers)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self._doc)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self._doc})

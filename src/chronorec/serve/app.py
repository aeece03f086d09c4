"""The FastAPI application: ``POST /score``, ``POST /recommend``, ``GET /healthz``, ``GET /model``.

Bodies are read and validated here rather than by FastAPI's parameter machinery, so every way a
body can be wrong maps to one clear 4xx:

=====  ===================================================================================
code   when
=====  ===================================================================================
400    the body is not valid JSON (or not UTF-8)
404    the endpoint does not fit the served model (``/recommend`` on a CTR model and vice versa)
413    the body is larger than the server's byte budget, or more history events / candidates /
       excluded ids than the server's limits
415    the content type is not ``application/json``
422    the JSON does not match the request schema (missing fields, wrong types, ranges, unknown
       fields, empty candidates), or history timestamps are unsorted or after the request time
=====  ===================================================================================

Error bodies are ``{"error": "<one line>", "detail": [{"loc": [...], "msg": ..., "type": ...}]}``
with ``loc`` starting at ``"body"`` (e.g. ``["body", "history", 3, "ts"]``). Anything else that goes
wrong is a bug in chronorec and answers 500.

Successful answers carry ``Server-Timing: app;dur=<ms>, cpu;dur=<ms>``: wall and CPU time from the
received bytes to the serialised response (what a load test cannot see from outside). Inference runs on the event loop
thread: it is CPU-bound and short, and running it there keeps
torch's intra-op threads from competing with a thread pool.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from chronorec import __version__
from chronorec.serve.schemas import ErrorResponse, Limits, RecommendResponse, ScoreResponse, TimeOrderError
from chronorec.serve.service import ServedModel

log = logging.getLogger("chronorec.serve")

MAX_ERRORS = 20
_SIZE_FIELDS = {"history", "candidates", "exclude"}


class RequestError(Exception):
    """A 4xx answer: the request, not the server, is at fault."""

    def __init__(self, status: int, error: str, loc: tuple[str | int, ...] = ("body",), kind: str = "invalid") -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = [{"loc": list(loc), "msg": error, "type": kind}]


def _where(loc: tuple[str | int, ...] | list[str | int]) -> str:
    """``("body", "history", 3, "ts")`` -> ``history[3].ts``."""
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _from_validation(err: ValidationError | RequestValidationError, prefix: tuple[str, ...]) -> RequestError:
    errors = err.errors() if isinstance(err, RequestValidationError) else err.errors(
        include_url=False, include_context=False, include_input=False)
    detail = [{"loc": [*prefix, *e["loc"]], "msg": str(e["msg"]), "type": str(e["type"])} for e in errors[:MAX_ERRORS]]
    status = 422
    if any(e["type"] == "json_invalid" for e in errors):
        status = 400
    elif any(e["type"] == "too_long" and len(e["loc"]) == 1 and e["loc"][0] in _SIZE_FIELDS for e in errors):
        status = 413
    first = detail[0] if detail else {"loc": list(prefix), "msg": "invalid request"}
    summary = f"{_where(first['loc'])}: {first['msg']}"
    if len(errors) > 1:
        summary += f" (and {len(errors) - 1} more)"
    out = RequestError(status, summary)
    out.detail = detail
    return out


async def _read_json_body(request: Request, limit: int) -> bytes:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise RequestError(415, f"content type must be application/json, got {media or 'none'!r}",
                           ("header", "content-type"), "unsupported_media_type")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"body of {declared} bytes exceeds the limit of {limit}", kind="too_large")
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"body exceeds the limit of {limit} bytes", kind="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(model: type[BaseModel], body: bytes) -> BaseModel:
    try:
        return model.model_validate_json(body)
    except ValidationError as err:
        raise _from_validation(err, ("body",)) from None
    except (ValueError, TypeError, RecursionError, UnicodeError) as err:  # parsing: the input's fault
        raise RequestError(400, f"body could not be parsed: {type(err).__name__}", kind="json_invalid") from None


def _error_response(err: RequestError) -> JSONResponse:
    return JSONResponse({"error": err.error, "detail": err.detail}, status_code=err.status)


def _timed(response: JSONResponse, t0: float, c0: float) -> JSONResponse:
    """Add ``Server-Timing: app;dur=<wall ms>, cpu;dur=<this thread's CPU ms>`` (validation,
    preprocessing, model and serialisation; the CPU figure is what the request costs whatever else
    runs on the host, as inference runs on this thread)."""
    wall, cpu = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
    response.headers["server-timing"] = f"app;dur={wall:.3f}, cpu;dur={cpu:.3f}"
    return response


def create_app(served: ServedModel) -> FastAPI:
    """The HTTP application around one loaded run."""
    limit = served.limits.max_body_bytes
    app = FastAPI(title="chronorec", version=__version__,
                  description=f"Serving {served.name} ({served.task}) trained on {served.schema.name}")
    app.state.served = served
    errors: dict[int | str, dict[str, Any]] = {c: {"model": ErrorResponse} for c in (400, 404, 413, 415, 422)}

    def body_doc(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, err: RequestError) -> JSONResponse:
        return _error_response(err)

    @app.exception_handler(TimeOrderError)
    async def _time_error(_: Request, err: TimeOrderError) -> JSONResponse:
        return _error_response(RequestError(422, err.msg, err.loc, "time_order"))

    @app.exception_handler(RequestValidationError)
    async def _fastapi_validation(_: Request, err: RequestValidationError) -> JSONResponse:
        return _error_response(_from_validation(err, ()))

    @app.exception_handler(ValidationError)
    async def _pydantic_validation(_: Request, err: ValidationError) -> JSONResponse:
        return _error_response(_from_validation(err, ("body",)))

    @app.exception_handler(Exception)
    async def _internal(_: Request, err: Exception) -> JSONResponse:  # a bug in chronorec, never the input
        log.error("internal error while serving %s", served.name, exc_info=err)
        return JSONResponse({"error": f"internal error ({type(err).__name__})", "detail": []}, status_code=500)

    @app.post("/score", response_model=ScoreResponse, responses=errors, openapi_extra=body_doc(served.models.score))
    async def score(request: Request) -> JSONResponse:
        """Click probability of each candidate given one user's history (CTR models)."""
        if served.task != "ctr":
            raise RequestError(404, f"{served.name} is a {served.task} model: use POST /recommend",
                               ("path",), "wrong_task")
        body = await _read_json_body(request, limit)
        t0, c0 = time.perf_counter(), time.thread_time()
        result = served.score(_parse(served.models.score, body))
        return _timed(JSONResponse(result), t0, c0)

    @app.post("/recommend", response_model=RecommendResponse, responses=errors,
              openapi_extra=body_doc(served.models.recommend))
    async def recommend(request: Request) -> JSONResponse:
        """Top-k next items over the whole catalogue (next-item models)."""
        if served.task != "next_item":
            raise RequestError(404, f"{served.name} is a {served.task} model: use POST /score",
                               ("path",), "wrong_task")
        body = await _read_json_body(request, limit)
        t0, c0 = time.perf_counter(), time.thread_time()
        result = served.recommend(_parse(served.models.recommend, body))
        return _timed(JSONResponse(result), t0, c0)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "model": served.name, "task": served.task}

    @app.get("/model")
    async def model_info() -> dict[str, Any]:
        return served.describe()

    return app


ENV_RUN = "CHRONOREC_SERVE_RUN"
ENV_LIMITS = "CHRONOREC_SERVE_LIMITS"


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` with several workers: the run and limits come from the
    environment (``CHRONOREC_SERVE_RUN``, ``CHRONOREC_SERVE_LIMITS`` = ``candidates,history``)."""
    import torch

    run = os.environ[ENV_RUN]
    cands, hist = (int(x) for x in os.environ.get(ENV_LIMITS, "1000,1000").split(","))
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return create_app(ServedModel.load(run, Limits(max_candidates=cands, max_history=hist)))

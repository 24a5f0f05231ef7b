"""``audio2vec serve``: the HTTP API and the search page, over the same API the CLI calls.

The web layer owns no search logic. One :class:`~search_engine.SearchEngine` is opened once (models
loaded, then warmed up with one query) and only read: the server never takes the writer lock, so an
``audio2vec index`` run in another process keeps writing, and every query first catches up with its
last commit (:meth:`SearchEngine.refresh`). Answers are :meth:`QueryResult.as_dict`, the object
``audio2vec query --json`` prints.

Threads: uploads are received and decoded in the request threads (many at once); the decoded
waveforms go to one query thread (:class:`QueryBatcher`), which answers those that arrived together
with one :meth:`SearchEngine.query_batch` call (their windows share encoder batches). Every other use
of the engine takes the same lock, so the engine is only ever used by one thread at a time.

Only files in the catalog are ever opened: ``/files/{id}/audio`` looks the id up and reads the path
the catalog holds; no path or name from a request reaches ``open()``. Uploads go to a temporary file
named by the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import ipaddress
import os
import queue
import re
import secrets
import sys
import tempfile
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from fastapi import FastAPI, Query, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..config import Settings
from ..errors import Audio2VecError, DecodeError, ParameterError
from ..filters import Filter

STATIC = Path(__file__).parent / "static"
#: longest passage ``/files/{id}/audio`` returns (seconds)
MAX_PASSAGE_S = 600.0
#: clips answered together by one ``query_batch`` call at most
MAX_BATCH = 32
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class QueryBatcher:
    """One thread that answers queued clips, those waiting together in one ``query_batch`` call."""

    def __init__(self, engine, lock: threading.Lock, *, max_batch: int = MAX_BATCH):
        self.engine, self.lock, self.max_batch = engine, lock, max_batch
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="audio2vec-query", daemon=True)
        self._thread.start()

    def submit(self, y: np.ndarray, name: str, *, k: int | None, mode: str | None, filter=None) -> concurrent.futures.Future:
        """Queue a mono waveform at the model rate (searched among the recordings ``filter``, a
        :class:`~search_engine.filters.Filter`, lets through); the future gets its :class:`QueryResult`."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((y, name, k, mode, filter, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            items = [item]
            while len(items) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                items.append(nxt)
            groups: dict[tuple, list] = {}
            for it in items:  # clips asked the same way share one call
                groups.setdefault((it[2], it[3], it[4]), []).append(it)
            for (k, mode, flt), group in groups.items():
                try:
                    with self.lock:
                        results = self.engine.query_batch([(y, self.engine.sample_rate_hz) for y, *_ in group], k=k, mode=mode, filter=flt)
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting requests
                    for *_, future in group:
                        future.set_exception(exc)
                    continue
                for (_, name, _, _, _, future), res in zip(group, results):
                    res.query = name
                    if res.error and res.error.startswith("<waveform>"):
                        res.error = name + res.error[len("<waveform>") :]
                    future.set_result(res)


def _file_row(f) -> dict:
    return {
        "id": f.id,
        "path": f.path,
        "duration_s": f.duration_s,
        "sample_rate_hz": f.sample_rate_hz,
        "channels": f.channels,
        "tags": f.tags or {},
        "label": f.label,
        "indexed_at": f.indexed_at.isoformat() if f.indexed_at else None,
    }


def upload_name(filename: str | None) -> str:
    """The name of an uploaded file without any folder part (``"clip"`` when it has none)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name or "clip"


def passage_wav(path: str, start_s: float, end_s: float | None, *, sample_rate_hz: int) -> bytes:
    """``path`` from ``start_s`` to ``end_s`` (None: its end; at most :data:`MAX_PASSAGE_S`) as a
    16-bit WAV: its own rate and channels when libsndfile reads it, else mono at its indexed rate
    (decoded by :func:`search_engine.audio.load`)."""
    import soundfile as sf

    stop = start_s + MAX_PASSAGE_S if end_s is None else min(end_s, start_s + MAX_PASSAGE_S)
    out = io.BytesIO()
    try:
        with sf.SoundFile(path) as f:
            rate = f.samplerate
            first = min(int(start_s * rate), f.frames)
            f.seek(first)
            y = f.read(max(0, min(f.frames, int(stop * rate)) - first), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        from ..audio import load

        rate = int(min(max(sample_rate_hz, 8000), 48000))
        full, _ = load(path, sr=rate)
        y = full[int(start_s * rate) : int(stop * rate), None]
    sf.write(out, np.clip(y, -1, 1), rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def create_app(engine, settings: Settings | None = None, *, warm_up: bool = True):
    """The FastAPI app serving ``engine`` (an open :class:`SearchEngine`, used read-only)."""
    settings = settings or engine.settings
    max_bytes = int(settings.max_upload_mb * 2**20)
    lock = threading.Lock()
    batcher = QueryBatcher(engine, lock)
    if warm_up:
        _warm_up(engine, lock)

    @asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()

    app = FastAPI(title="audio2vec", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.engine, app.state.batcher = engine, batcher

    def error(status: int, message: str, **extra) -> JSONResponse:
        return JSONResponse({**extra, "error": message}, status_code=status)

    @app.exception_handler(HTTPException)
    async def _http_error(request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    app.add_middleware(_Guard, token=settings.serve_token, max_bytes=max_bytes, limit_mb=settings.max_upload_mb)

    @app.get("/health")
    def health() -> dict:
        with lock:
            engine.refresh()
            counts = engine.catalog.counts()
            gen = engine.generation
        return {"status": "ok", "files": counts["files"], "segments": counts["segments"], "model": engine.model, "generation": gen}

    @app.post("/query")
    async def query(
        clip: UploadFile,
        k: Optional[int] = Query(None, ge=1, le=1000),
        mode: Optional[Literal["match", "similar"]] = Query(None),
        where: list[str] = Query([]),
        under: list[str] = Query([]),
    ):
        name = upload_name(clip.filename)
        try:
            flt = Filter.parse(where, under) or None
        except ParameterError as exc:
            return error(422, str(exc), query=name, results=[])
        try:
            y = await run_in_threadpool(_decode_upload, engine, clip, name)
        except DecodeError as exc:
            return error(422, f"{name}: {exc.reason}", query=name, results=[])
        res = await asyncio.wrap_future(batcher.submit(y, name, k=k, mode=mode, filter=flt))
        if res.error:
            return error(422, res.error, query=name, results=[])
        return res.as_dict()

    @app.get("/similar")
    def similar(path: str = Query(..., min_length=1), k: Optional[int] = Query(None, ge=1, le=1000),
                where: list[str] = Query([]), under: list[str] = Query([])):
        try:
            flt = Filter.parse(where, under) or None
        except ParameterError as exc:
            return error(422, str(exc))
        try:
            with lock:
                res = engine.similar_to(path, k=k, filter=flt)
        except ParameterError:
            return error(404, f"{path}: not in the index")
        return res.as_dict()

    @app.get("/files")
    def files(under: Optional[str] = None, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)):
        with lock:
            total, rows = engine.catalog.list_files(under or None, limit=limit, offset=offset)
        return {"total": total, "offset": offset, "files": [_file_row(f) for f in rows]}

    def _one(file_id: int):
        with lock:
            found = engine.catalog.files_by_id([file_id])
        if file_id not in found:
            raise HTTPException(404, f"no file with id {file_id} in the index")
        return found[file_id]

    @app.get("/files/{file_id}")
    def file(file_id: int = PathParam(..., ge=0, le=2**63 - 1)):
        return _file_row(_one(file_id))

    @app.get("/files/{file_id}/audio")
    def audio(file_id: int = PathParam(..., ge=0, le=2**63 - 1), start: float = Query(0.0, ge=0, allow_inf_nan=False), end: Optional[float] = Query(None, ge=0, allow_inf_nan=False)):
        f = _one(file_id)
        if end is not None and end <= start:
            return error(422, f"end ({end}) must be after start ({start})")
        try:  # f.path comes from the catalog, never from the request
            data = passage_wav(f.path, start, end, sample_rate_hz=f.sample_rate_hz)
        except (OSError, Audio2VecError) as exc:
            return error(404, f"file {file_id} is in the index but cannot be read now: {exc}")
        return Response(data, media_type="audio/wav", headers={"Cache-Control": "private, max-age=60"})

    @app.get("/")
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _decode_upload(engine, clip, name: str) -> np.ndarray:
    """Copy an upload to a temporary file (named here) and decode it at the model rate."""
    suffix = Path(name).suffix if _SAFE_SUFFIX.match(Path(name).suffix or "") else ""
    fd, tmp = tempfile.mkstemp(prefix="audio2vec-upload-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            clip.file.seek(0)
            while chunk := clip.file.read(1 << 20):
                out.write(chunk)
        try:
            return engine.load_clip(tmp)[1]
        except DecodeError as exc:
            raise DecodeError(name, exc.reason.replace(tmp, name)) from None
    finally:
        os.unlink(tmp)


def _warm_up(engine, lock) -> None:
    """One query per mode on a generated tone, so that the first request finds every model traced."""
    sr = engine.sample_rate_hz
    t = np.arange(int(3 * sr)) / sr
    y = (0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    with lock:
        for mode in ("match", "similar"):
            engine.query_batch([(y, sr)], k=1, mode=mode)


class _Guard:
    """ASGI middleware: the token (when configured) and the upload size limit."""

    def __init__(self, app, *, token: str, max_bytes: int, limit_mb: float):
        self.app, self.token, self.max_bytes, self.limit_mb = app, token, max_bytes, limit_mb

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token and not self._authorised(scope, headers):
            return await _send_json(send, 401, {"error": "a token is required: Authorization: Bearer TOKEN, or ?token=TOKEN"})
        if scope["path"] != "/query" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        too_large = f"upload larger than max_upload_mb ({self.limit_mb:g} MiB)"
        try:
            if int(headers.get("content-length", "0")) > self.max_bytes:
                return await _send_json(send, 413, {"error": too_large})
        except ValueError:
            return await _send_json(send, 400, {"error": "bad Content-Length"})
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, too_large)
            return message

        return await self.app(scope, limited, send)

    def _authorised(self, scope, headers: dict) -> bool:
        from urllib.parse import parse_qs

        given = headers.get("authorization", "")
        given = given[7:] if given.lower().startswith("bearer ") else headers.get("x-audio2vec-token", "")
        if not given:
            given = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token") or [""])[0]
        return secrets.compare_digest(given.encode(), self.token.encode())


async def _send_json(send, status: int, body: dict) -> None:
    import json

    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Open the index in ``settings`` and serve it until interrupted.

    Refuses a non-loopback ``host`` unless ``settings.serve_token`` is set.
    """
    import uvicorn

    from ..engine import SearchEngine

    if not is_loopback(host) and not settings.serve_token:
        raise ParameterError(
            f"--host {host} opens the index to other machines: set serve_token (config.yaml or "
            "AUDIO2VEC_SERVE_TOKEN) so that every request must carry it, or bind to 127.0.0.1"
        )
    _few_malloc_arenas()
    with SearchEngine.open(settings=settings) as engine:
        app = create_app(engine, settings)
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


def _few_malloc_arenas(n: int = 2) -> None:
    """glibc: at most ``n`` malloc arenas (``MALLOC_ARENA_MAX``) unless the environment says
    otherwise. Uploads are decoded in many request threads; with an arena per thread the
    server's memory kept growing from round to round of a load test (benchmarks/serve_load.py)."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, n)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass

"""Reading request bodies safely: size-capped before and after decompression."""

from __future__ import annotations

import zlib

from starlette.requests import Request

from hotwash.errors import PayloadError, PayloadTooLarge


async def read_body(request: Request, *, limit: int) -> bytes:
    """The request body, gunzipped if ``Content-Encoding: gzip``; never more than ``limit`` bytes.

    The compressed stream is capped while it arrives, and decompression stops at the limit, so a
    small gzip bomb cannot expand into memory.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body of {declared} bytes is over the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise PayloadError(f"unsupported Content-Encoding {encoding!r}: send gzip, deflate or identity")
    decomp = zlib.decompressobj(wbits=47)  # 47: accept gzip or zlib headers
    try:
        out = decomp.decompress(body, limit + 1)
    except zlib.error as exc:
        raise PayloadError(f"body is not valid {encoding} data: {exc}") from None
    if len(out) > limit or decomp.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body is over the limit of {limit} bytes")
    if not decomp.eof:
        raise PayloadError(f"body is truncated {encoding} data")
    return out

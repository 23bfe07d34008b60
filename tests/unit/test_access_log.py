"""The protocol's access lines: uvicorn's default format written directly, any other logging
configuration through `logger.info`, and nothing queued is lost when the server stops."""

from __future__ import annotations

import asyncio
import io
import logging
import sys

from uvicorn.config import Config

from repast.server.access_log import AccessLog, format_lines

LINE = ("127.0.0.1:50412", "POST", "/get-online-features?x=1", "1.1", 200)


def _uvicorn_access_logger(stream: io.StringIO) -> logging.Logger:
    """`uvicorn.access` as uvicorn's default logging configuration sets it up, writing to `stream`."""
    async def app(scope: object, receive: object, send: object) -> None:
        return None

    Config(app=app).configure_logging()
    logger = logging.getLogger("uvicorn.access")
    logger.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    return logger


def test_lines_are_uvicorns_default_access_format() -> None:
    assert format_lines([LINE, (*LINE[:4], 404)]) == (
        'INFO:     127.0.0.1:50412 - "POST /get-online-features?x=1 HTTP/1.1" 200 OK\n'
        'INFO:     127.0.0.1:50412 - "POST /get-online-features?x=1 HTTP/1.1" 404 Not Found\n')


def test_the_same_line_uvicorn_would_write_is_written_and_close_writes_what_is_queued() -> None:
    stream = io.StringIO()
    logger = _uvicorn_access_logger(stream)
    reference = io.StringIO()
    logger.handlers[0].setStream(reference)  # type: ignore[attr-defined]
    logger.info('%s - "%s %s HTTP/%s" %d', *LINE)  # what uvicorn's own cycle writes
    logger.handlers[0].setStream(stream)  # type: ignore[attr-defined]

    async def serve() -> None:
        log = AccessLog(logger)
        for _ in range(3):
            log.record(asyncio.get_running_loop(), LINE)
        log.close()  # the server stops before the flush timer fires

    try:
        asyncio.run(serve())
    finally:
        logger.handlers[0].setStream(sys.stdout)  # type: ignore[attr-defined]  # as uvicorn configures it
    assert stream.getvalue() == reference.getvalue() * 3


def test_another_logging_configuration_gets_every_line_through_the_logger() -> None:
    logger = logging.getLogger("repast-test-access")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    async def serve() -> None:
        log = AccessLog(logger)
        log.record(asyncio.get_running_loop(), LINE)
        await asyncio.sleep(0.2)  # the flush timer fires
        log.close()

    asyncio.run(serve())
    assert stream.getvalue() == 'INFO 127.0.0.1:50412 - "POST /get-online-features?x=1 HTTP/1.1" 200\n'

"""The logger aiohttp's HTTP layer writes to, made safe to ship.

When aiohttp's parser refuses a request (a line or header past the bound, a bad method), it logs
the exception, whose text quotes the start of the offending bytes: an `Authorization` or `Cookie`
value. This filter keeps the event, the exception's type and the client's address, gives the line
a request id like every other request's, and drops the exception's text. The method and path are
not logged: the parser refused them, and what it read is not known to be either.
"""

from __future__ import annotations

import logging
import secrets
from typing import Final

HTTP_LOGGER: Final = "idgate.http"


class _RedactParserErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            kind = type(record.exc_info[1]).__name__
            # aiohttp logs "Error handling request from %s" with the peer's address.
            if isinstance(record.args, tuple) and len(record.args) == 1:
                record.client_ip = str(record.args[0])
            record.request_id = secrets.token_hex(8)
            record.msg = f"refused a malformed request ({kind})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def http_logger() -> logging.Logger:
    logger = logging.getLogger(HTTP_LOGGER)
    if not any(isinstance(each, _RedactParserErrors) for each in logger.filters):
        logger.addFilter(_RedactParserErrors())
    return logger

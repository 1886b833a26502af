"""The logger aiohttp's HTTP layer writes to, made safe to ship.

When aiohttp's parser refuses a request (a line or header past the bound, a bad method), it logs
the exception, whose text quotes the start of the offending bytes: an `Authorization` or `Cookie`
value. This filter keeps the event and the exception's type and drops its text.
"""

from __future__ import annotations

import logging
from typing import Final

HTTP_LOGGER: Final = "idgate.http"


class _RedactParserErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            kind = type(record.exc_info[1]).__name__
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

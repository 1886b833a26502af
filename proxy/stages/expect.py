"""`Expect: 100-continue`: a client is invited to send its body only once idgate will read it.

aiohttp answers `100 Continue` as soon as it has parsed the headers, before any handler runs, so
an anonymous client would be invited to upload a body that idgate is about to refuse. nginx
`auth_request` and oauth2-proxy answer such a request with its refusal and no 100. Here:

- the catch-all route's expect handler (`defer_continue`) sends nothing for `100-continue`;
- a handler that is about to read the body (the forwarder once the request is allowed, the
  back-channel logout endpoint) sends the 100 first (`continue_if_expected`);
- any response that goes out while an announced body has not fully arrived says
  `Connection: close` (`close_unless_body_read`), and aiohttp closes the connection after it:
  the client may never send that body, or send it late, and whatever arrives next could be either
  the body or a new request, so none of it is parsed as a request.
"""

from __future__ import annotations

from typing import Final

from aiohttp import HttpVersion11, hdrs, web

_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


def _expects_continue(request: web.BaseRequest) -> bool:
    # RFC 9110 10.1.1: "A server that receives a 100-continue expectation in an HTTP/1.0 request
    # MUST ignore that expectation."
    return (
        request.version == HttpVersion11
        and request.headers.get(hdrs.EXPECT, "").lower() == "100-continue"
    )


async def defer_continue(request: web.Request) -> web.StreamResponse | None:
    """The route's expect handler: `100-continue` waits for `continue_if_expected`; any other
    expectation gets 417, as with aiohttp's own handler.

    RFC 9110 10.1.1: "A server that receives an Expect field value containing a member other than
    100-continue MAY respond with a 417 (Expectation Failed) status code"."""
    if request.version != HttpVersion11 or _expects_continue(request):
        return None
    refused = web.Response(status=417, text="unknown expectation")
    # Answered before the handler ever sees the request: the connection ends with this answer.
    refused.force_close()
    return refused


async def continue_if_expected(request: web.Request) -> None:
    """Send `100 Continue` if the client waits for it before sending the body about to be read.

    RFC 9110 10.1.1: "A server MAY omit sending a 100 (Continue) response if it has already
    received some or all of the content for the corresponding request, or if the framing
    indicates that there is no content"; only the latter is known here.
    """
    if request.body_exists and _expects_continue(request):
        writer = request.writer
        await writer.write(_CONTINUE)
        # As aiohttp's own expect handler: the response proper has not started yet.
        writer.output_size = 0


async def close_unless_body_read(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: a response sent before the request's announced body has fully
    arrived ends the connection.

    RFC 9110 10.1.1: "A server that responds with a final status code before reading the entire
    request content SHOULD indicate whether it intends to close the connection (e.g., see
    Section 9.6 of [HTTP/1.1]) or continue reading the request content."
    """
    if request.body_exists and not request.content.is_eof():
        response.force_close()
        # The hook runs after aiohttp has written its own Connection header.
        response.headers[hdrs.CONNECTION] = "close"

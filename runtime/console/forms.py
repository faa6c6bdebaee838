"""Form posts of the console: `application/x-www-form-urlencoded` bodies read within a size limit.

The console's forms hold a few fields (a CSRF token, run ids, a comment, a corrected input), so they
are parsed here with the standard library instead of a multipart parser.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

MAX_FORM_BYTES = 1_000_000


class FormError(Exception):
    """A post the console does not read: too large, another content type or not UTF-8."""


class Form:
    """The fields of a posted form, in order; a field may repeat (`getlist`)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str) -> str | None:
        return next((value for key, value in self.pairs if key == name), None)

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


async def read_form(request: Request) -> Form:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormError("send the form as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(f"the form is larger than {MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormError("the form is not UTF-8") from None
    return Form(parse_qsl(text, keep_blank_values=True, max_num_fields=1000))

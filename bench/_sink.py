"""A small fast HTTP/1.1 sink for benchmarks: answers every request with a fixed JSON body.

python bench/_sink.py PORT      (keep-alive, Content-Length bodies)

`GET /last` answers with the body of the last request that had one, so a benchmark can check what a
contender sent (the same mapping everywhere).
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"id":"SO-1","status":"open"}'
RESPONSE = (
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


LAST: list[bytes] = [b"{}"]


class Sink(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                line_end = head.find(b"\r\n", marker)
                length = int(head[marker + 15 : line_end if line_end >= 0 else len(head)].strip())
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            if length:
                LAST[0] = self.buffer[head_end + 4 : total]
            elif head.startswith(b"get /last "):
                last = LAST[0]
                self.transport.write(  # type: ignore[attr-defined]
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(last), last)
                )
                self.buffer = self.buffer[total:]
                continue
            self.buffer = self.buffer[total:]
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", port, backlog=1024)
    print(f"sink listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))

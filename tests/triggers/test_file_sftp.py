"""The file trigger over SFTP, against asyncssh's own SFTP server on loopback (a temporary host key,
password login, the server chrooted to a temporary folder): the same semantics as a local folder
(complete files, per-record batches, resume from the cursor's offset, duplicates, failed files with a
reason), host key and login checks, and the connector's list/read/write calls."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from connectors.sftp import SftpConfig, create
from runtime.connector_api import CallRequest, ConnectorContext, ConnectorError
from runtime.testing.connector_kit import KitCall, check_connector
from runtime.testing.source_kit import check_source
from runtime.trigger_registry import default_trigger_registry
from runtime.triggers.file import FileSpec
from tests.triggers.file_harness import Crash, DropOrigin, FakeContext, Journal, scan, source

PASSWORD = "sftp-pass-4c1e"


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "syncline" and password == PASSWORD


@dataclass
class SftpSite:
    root: Path
    port: int
    host_key: str

    def connector(self, **overrides: Any) -> Any:
        config = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": "syncline",
            "password": PASSWORD,
            "host_key": self.host_key,
            "base_dir": "inbox",
            **overrides,
        }
        return create(SftpConfig.model_validate(config), {}, ConnectorContext(connection="drop", redact=_redact))


def _redact(text: str) -> str:
    return text.replace(PASSWORD, "***")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[SftpSite]:
    root = tmp_path / "sftp"
    (root / "inbox").mkdir(parents=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[key],
        server_factory=_Server,
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
        allow_scp=False,
    )
    try:
        yield SftpSite(root, server.get_port(), key.export_public_key().decode().strip())
    finally:
        server.close()
        await server.wait_closed()


async def _ctx(site: SftpSite, journal: Journal | None = None) -> FakeContext:
    return FakeContext(site.connector(), journal)


async def test_records_over_sftp_then_done(site: SftpSite) -> None:
    inbox = site.root / "inbox"
    (inbox / "statement.csv.part").write_text("id;amount\n1;10.50\n2;-3.00\n")
    ctx = await _ctx(site)
    src = source(per="record", csv={"delimiter": ";"})
    await scan(src, ctx)
    assert ctx.journal.runs == {}  # still being uploaded
    (inbox / "statement.csv.part").rename(inbox / "statement.csv")
    await scan(src, ctx)
    assert [p["record"] for p in ctx.journal.runs.values()] == [
        {"id": "1", "amount": "10.50"},
        {"id": "2", "amount": "-3.00"},
    ]
    assert (inbox / "done" / "statement.csv").exists() and not (inbox / "statement.csv").exists()
    (inbox / "again.csv").write_text("id;amount\n1;10.50\n2;-3.00\n")
    await scan(src, ctx)
    assert len(ctx.journal.runs) == 2 and ctx.counts["duplicates"] == 1
    await (await ctx.connector()).aclose()


async def test_failed_file_gets_a_reason_file_on_the_server(site: SftpSite) -> None:
    (site.root / "inbox" / "bad.ndjson").write_text('{"n": 1}\nnot json\n')
    ctx = await _ctx(site)
    await scan(source(per="record"), ctx)
    failed = site.root / "inbox" / "failed"
    assert (failed / "bad.ndjson").exists()
    assert "record 2, line 2" in (failed / "bad.ndjson.reason.txt").read_text()
    assert [event.payload["number"] for event, _, _ in ctx.journal.dead] == [2]
    await (await ctx.connector()).aclose()


async def test_resume_over_sftp_reads_from_the_cursor_offset(site: SftpSite) -> None:
    body = "id\n" + "".join(f"{n}\n" for n in range(1, 1001))
    (site.root / "inbox" / "big.csv").write_text(body)
    journal = Journal()
    first = await _ctx(site, journal)
    first.crash_after = 2
    with pytest.raises(Crash):
        await scan(source(per="record", batch=300), first)
    assert journal.cursor["record"] == 600
    assert body.encode()[: journal.cursor["offset"]].endswith(b"\n600\n")
    await (await first.connector()).aclose()
    second = await _ctx(site, journal)
    await scan(source(per="record", batch=300), second)
    assert [p["record"]["id"] for p in journal.runs.values()] == [str(n) for n in range(1, 1001)]
    assert journal.commits == 2 + 2  # 400 records left: two batches
    assert (site.root / "inbox" / "done" / "big.csv").exists()
    await (await second.connector()).aclose()


async def test_subfolders_with_double_star(site: SftpSite) -> None:
    (site.root / "inbox" / "2026" / "12").mkdir(parents=True)
    (site.root / "inbox" / "2026" / "12" / "a.json").write_text('{"a": 1}')
    (site.root / "inbox" / "top.json").write_text('{"top": 1}')
    ctx = await _ctx(site)
    await scan(source(pattern="**/*.json"), ctx)
    names = sorted(p["file"]["name"] for p in ctx.journal.runs.values())
    assert names == ["2026/12/a.json", "top.json"]
    sha = hashlib.sha256(b'{"a": 1}').hexdigest()
    assert ctx.journal.runs[sha]["content"] == {"a": 1}
    await (await ctx.connector()).aclose()


async def test_wrong_host_key_and_wrong_password_are_refused(site: SftpSite) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    impostor = site.connector(host_key=other)
    with pytest.raises(ConnectorError) as info:
        await impostor.folder().list("*")
    assert "host key" in str(info.value) and info.value.error_class == "fatal"
    wrong = site.connector(password="guessed")
    with pytest.raises(ConnectorError) as info:
        await wrong.folder().list("*")
    assert "login refused" in str(info.value) and "guessed" not in str(info.value)


async def test_connector_calls_list_read_write(site: SftpSite) -> None:
    connector = site.connector()
    written = await connector.call(
        CallRequest("put", {"action": "write", "path": "out/rates.json", "data": {"eur": "1.08"}})
    )
    assert written.output["path"] == "out/rates.json"
    listed = await connector.call(CallRequest("ls", {"action": "list", "pattern": "out/*.json"}))
    assert listed.output == ["out/rates.json"]
    read = await connector.call(CallRequest("get", {"action": "read", "path": "out/rates.json"}))
    assert read.output == {"eur": "1.08"}
    with pytest.raises(ConnectorError) as info:
        await connector.call(CallRequest("get", {"action": "read", "path": "../etc/passwd"}))
    assert info.value.reason == "config"
    await connector.aclose()


async def test_the_file_source_over_sftp_keeps_the_source_contract(site: SftpSite) -> None:
    spec = FileSpec.model_validate({"connection": "drop", "pattern": "*.csv", "every": "1s", "stable_for": "0s"})
    connector = site.connector()
    ctx = await check_source(
        default_trigger_registry().get("file"), spec, DropOrigin(site.root / "inbox"), connector=connector
    )
    assert len(ctx.accepted) == 7
    inbox = site.root / "inbox"  # the last file may still wait for its move (stopped right after its commit)
    assert len(list((inbox / "done").iterdir())) + len(list(inbox.glob("*.csv"))) == 7
    await connector.aclose()


async def test_the_sftp_connector_keeps_the_connector_contract(site: SftpSite) -> None:
    from connectors.sftp import CONNECTOR

    (site.root / "inbox" / "prices.json").write_text('{"sku": "A-1", "price": "9.90"}')
    config = {
        "host": "127.0.0.1",
        "port": site.port,
        "username": "syncline",
        "password": PASSWORD,
        "host_key": site.host_key,
        "base_dir": "inbox",
    }
    await check_connector(
        CONNECTOR,
        config,
        {"read": {"action": "read", "path": "prices.json"}, "missing": {"action": "read", "path": "nope.json"}},
        good=KitCall("read", spec={"path": "prices.json"}),
        bad=KitCall("missing", spec={"path": "nope.json"}),
        check_output=lambda out: out == {"sku": "A-1", "price": "9.90"} or pytest.fail(f"output {out!r}"),
    )


async def test_a_connection_lost_mid_file_resumes_on_the_next_scan(site: SftpSite) -> None:
    pad = "x" * 600  # about 430 records per 256 KiB read: the cut falls between two reads
    body = "id,pad\n" + "".join(f"{n},{pad}\n" for n in range(1, 2001))
    (site.root / "inbox" / "big.csv").write_text(body)
    ctx = await _ctx(site)
    connector = await ctx.connector()
    accept = ctx.accept

    async def accept_then_cut(events, *, cursor):  # type: ignore[no-untyped-def]
        accepted = await accept(events, cursor=cursor)
        if ctx.journal.commits == 2:
            connector._conn.abort()  # the network goes away after the second batch
        return accepted

    ctx.accept = accept_then_cut  # type: ignore[method-assign]
    src = source(per="record", batch=200)
    with pytest.raises(ConnectorError) as info:
        await scan(src, ctx)
    assert info.value.retriable and "Connection" in str(info.value)
    assert len(ctx.journal.runs) == 400 and ctx.journal.cursor["record"] == 400
    assert (site.root / "inbox" / "big.csv").exists()
    await scan(src, ctx)  # the next scan connects again and reads on from the cursor
    assert [p["record"]["id"] for p in ctx.journal.runs.values()] == [str(n) for n in range(1, 2001)]
    assert ctx.journal.commits == 10  # 2 before the cut, 8 after: no batch committed twice
    assert (site.root / "inbox" / "done" / "big.csv").exists()
    await connector.aclose()

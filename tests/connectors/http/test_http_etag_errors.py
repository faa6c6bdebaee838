"""ETag / If-Match on updates (Dynamics 365, SAP OData) and errors read from the body (`errors:`: Zuora's
HTTP 200 with `"success": false`, vendor codes on error statuses), against real local servers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from connectors.http import HttpOperation
from runtime.connector_api import CallRequest, ConnectorError
from runtime.engine.errors import classify
from tests.connectors.http.http_target import Reply, Seen, call_once, json_reply, make_connector, run


class Record:
    """One record with a row version: reads give its ETag (header and body), writes need a matching If-Match."""

    def __init__(self) -> None:
        self.version = 7
        self.name = "Contoso"

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "GET":
            return json_reply({"@odata.etag": self.etag, "name": self.name}, headers={"ETag": self.etag})
        sent = seen.headers.get("if-match")
        if sent is not None and sent not in ("*", self.etag):
            return json_reply(
                {"error": {"code": "0x80060882", "message": "The version of the existing record doesn't match"}},
                412,
            )
        self.version += 1
        self.name = seen.json()["name"]
        return Reply(204)


UPDATE = {"method": "PATCH", "path": "/accounts(1)", "body": {"name": "Fabrikam"}}
DYNAMICS_ERRORS = {"code": "$.error.code", "message": "$.error.message"}


def test_if_match_from_an_earlier_read_is_sent_and_a_stale_one_is_a_fatal_conflict(serve) -> None:
    record = Record()
    server = serve(record)
    ops = {"update": {**UPDATE, "if_match": "{{ params.etag }}"}}

    ok = run(call_once(make_connector(server.url, operations=ops), "update", {"if_match": 'W/"7"'}))
    assert ok.status == 204 and record.name == "Fabrikam"
    assert server.requests[-1].headers["if-match"] == 'W/"7"'

    with pytest.raises(ConnectorError) as caught:
        run(
            call_once(
                make_connector(server.url, operations=ops, errors=DYNAMICS_ERRORS),
                "update",
                {"if_match": 'W/"7"'},  # the record is at version 8 now
            )
        )
    error = caught.value
    assert (error.status, error.error_class, error.code) == (412, "fatal", "0x80060882")
    assert 'conflict — the record changed since its ETag was read (If-Match W/"7")' in str(error)
    assert "doesn't match" in str(error)


def test_an_empty_if_match_sends_no_header(serve) -> None:
    """`if_match: "{{ params.etag }}"` when the flow has no ETag renders empty: the write goes without one."""
    server = serve(Record())
    ops = {"update": {**UPDATE, "if_match": "{{ params.etag }}"}}
    run(call_once(make_connector(server.url, operations=ops), "update", {"if_match": ""}))
    assert "if-match" not in server.requests[-1].headers


def test_if_match_fetch_reads_the_etag_first_and_412_without_a_vendor_code_is_etag_conflict(serve) -> None:
    record = Record()
    server = serve(record)
    ops = {"update": {**UPDATE, "if_match": "fetch"}}
    result = run(call_once(make_connector(server.url, operations=ops), "update", idempotency_key="k-1"))
    assert result.status == 204 and record.version == 8
    read, write = server.requests
    assert (read.method, read.path, read.body) == ("GET", "/accounts(1)", b"")
    assert "idempotency-key" not in read.headers and "content-type" not in read.headers
    assert (write.method, write.headers["if-match"]) == ("PATCH", 'W/"7"')

    def races(seen: Seen) -> Reply:  # someone else writes between our read and our write
        if seen.method == "GET":
            return json_reply({}, headers={"ETag": '"1"'})
        return Reply(412, b"Precondition Failed", {"Content-Type": "text/plain"})

    racing = serve(races)
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(racing.url, operations=ops), "update"))
    assert (caught.value.status, caught.value.retriable, caught.value.code) == (412, False, "etag_conflict")


def test_if_match_fetch_finds_the_etag_in_the_body_or_another_path(serve) -> None:
    """SAP OData v2 puts it in `d.__metadata.etag`; `etag_path` reads another resource than the write's."""
    etag = "W/\"datetimeoffset'2026-12-04T10%3A00%3A00Z'\""

    def sap(seen: Seen) -> Reply:
        if seen.method == "GET":
            return json_reply({"d": {"__metadata": {"etag": etag}, "SalesOrder": "1"}})
        return Reply(204)

    server = serve(sap)
    ops = {
        "update": {
            "method": "PATCH",
            "path": "/A_SalesOrder('1')/to_Item",
            "etag_path": "/A_SalesOrder('1')",
            "if_match": "fetch",
            "body": {},
        }
    }
    run(call_once(make_connector(server.url, operations=ops), "update"))
    assert [r.path for r in server.requests] == ["/A_SalesOrder('1')", "/A_SalesOrder('1')/to_Item"]
    assert server.requests[1].headers["if-match"] == etag

    no_etag = serve(lambda seen: json_reply({"d": {}}))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(no_etag.url, operations=ops), "update"))
    assert "answered without an ETag" in str(caught.value) and not caught.value.retriable
    assert [r.method for r in no_etag.requests] == ["GET"]


def test_if_match_with_a_line_break_is_refused_before_sending(serve) -> None:
    server = serve()
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, operations={"update": {**UPDATE, "if_match": "x"}}), "update",
                      {"if_match": '"1"\r\nX-Evil: 1'}))  # fmt: skip
    assert caught.value.reason == "config" and server.requests == []


# ----------------------------------------------------------------------------------- body errors

ZUORA_ERRORS: dict[str, Any] = {
    "flag": "$.success",
    "code": ["$.reasons[0].code", "$.Errors[0].Code"],
    "message": ["$.reasons[0].message", "$.Errors[0].Message"],
    "retriable_codes": [r"\d{6}(50|60|70)"],
}


def zuora_failure(code: int, message: str) -> Reply:
    return json_reply(
        {"success": False, "processId": "3F7EA3FD706C7E7C", "reasons": [{"code": code, "message": message}]}
    )


def test_http_200_with_success_false_is_an_error_carrying_the_vendor_code(serve) -> None:
    server = serve(lambda seen: zuora_failure(53100020, "Invalid value for field AccountNumber"))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, errors=ZUORA_ERRORS)))
    error = caught.value
    assert (error.status, error.reason, error.error_class, error.code) == (200, "response", "fatal", "53100020")
    assert str(error).endswith(
        "returned HTTP 200 but its body says it failed: 53100020: Invalid value for field AccountNumber"
    )
    assert error.body["processId"] == "3F7EA3FD706C7E7C"
    failed = classify(error).as_dict()  # what the journal and dead letters keep
    assert failed["code"] == "53100020" and failed["class"] == "fatal"


def test_body_errors_with_a_retriable_code_are_retriable_and_success_passes(serve) -> None:
    answers = iter([zuora_failure(50000050, "Lock contention"), json_reply({"success": True, "id": "8a8"})])
    server = serve(lambda seen: next(answers))
    connector = make_connector(server.url, errors=ZUORA_ERRORS)

    async def scenario() -> Any:
        try:
            with pytest.raises(ConnectorError) as caught:
                await connector.call(CallRequest("get", {}))
            assert caught.value.retriable and caught.value.code == "50000050"
            return (await connector.call(CallRequest("get", {}))).output
        finally:
            await connector.aclose()

    assert run(scenario()) == {"success": True, "id": "8a8"}


def test_an_operation_errors_replaces_the_connections(serve) -> None:
    """Zuora's CRUD actions answer `{"Success": false, "Errors": [{"Code", "Message"}]}`."""
    server = serve(
        lambda seen: json_reply([{"Success": False, "Errors": [{"Code": "INVALID_VALUE", "Message": "bad"}]}])
    )
    ops = {
        "create": {
            "method": "POST",
            "path": "/v1/action/create",
            "body": {},
            "errors": {"flag": "$[0].Success", "code": "$[0].Errors[0].Code"},
        }
    }
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, operations=ops, errors=ZUORA_ERRORS), "create"))
    assert caught.value.code == "INVALID_VALUE"


def test_status_errors_gain_the_vendor_code_and_message(serve) -> None:
    def netsuite(seen: Seen) -> Reply:
        return json_reply(
            {
                "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
                "title": "Bad Request",
                "status": 400,
                "o:errorDetails": [{"detail": "Invalid value for the field entity.", "o:errorCode": "INVALID_VALUE"}],
            },
            400,
        )

    server = serve(netsuite)
    rules = {"code": "$['o:errorDetails'][0]['o:errorCode']", "message": "$['o:errorDetails'][0].detail"}
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(server.url, errors=rules)))
    assert caught.value.code == "INVALID_VALUE" and caught.value.error_class == "fatal"
    assert str(caught.value).endswith(
        "returned HTTP 400 Bad Request: INVALID_VALUE: Invalid value for the field entity."
    )

    sap = serve(lambda s: json_reply({"error": {"code": "SY/530", "message": {"lang": "en", "value": "Locked"}}}, 503))
    with pytest.raises(ConnectorError) as caught:
        run(call_once(make_connector(sap.url, errors={"code": "$.error.code", "message": "$.error.message"})))
    assert (caught.value.code, caught.value.retriable) == ("SY/530", True)
    assert str(caught.value).endswith(": SY/530: Locked")


def test_errors_config_is_checked() -> None:
    with pytest.raises(ValidationError, match="invalid JSONPath"):
        HttpOperation.model_validate({"errors": {"flag": "$.["}})
    with pytest.raises(ValidationError, match="invalid regular expression"):
        HttpOperation.model_validate({"errors": {"retriable_codes": ["("]}})
    with pytest.raises(ValidationError, match="name the header"):
        HttpOperation.model_validate({"etag_from": ["header:"]})

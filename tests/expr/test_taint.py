"""Values derived from a secret stay secret-marked through every filter and operator, and are masked
wherever they are shown; values that never touched a secret are not marked (issue 8.3)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from runtime.errors import ExpressionError
from runtime.expr import (
    SECRETS_KEY,
    TAINT_KEY,
    ExpressionEngine,
    RenderError,
    Secret,
    SecretText,
    Taint,
    redact_value,
)
from runtime.secrets import SecretStore

CANARY = "hunter2-pass-5c1e"
SECRETS = {"API_PW": CANARY}

# every form a derived value could be shown in
FORMS = [
    CANARY,
    CANARY.upper(),
    base64.b64encode(f"user:{CANARY}".encode()).decode(),
    base64.b64encode(CANARY.encode()).decode(),
    hashlib.sha256(CANARY.encode()).hexdigest(),
    " ".join(CANARY),
    CANARY.replace("2", "#"),
    *[CANARY[i : i + 4] for i in range(len(CANARY) - 3)],
]

DERIVED = [
    "{{ ('user:' ~ secret('API_PW')) | b64encode }}",
    "{{ secret('API_PW') | upper }}",
    "{{ secret('API_PW') | lower | title }}",
    "{{ secret('API_PW')[0:4] }}",
    "{{ secret('API_PW')[4:] }}",
    "{{ secret('API_PW')[3] ~ secret('API_PW')[4] ~ secret('API_PW')[5] ~ secret('API_PW')[6] }}",
    "{{ secret('API_PW') | list | join(' ') }}",
    "{{ secret('API_PW') | list | reverse | join }}",
    "{{ {'pw': secret('API_PW')} | tojson }}",
    "{{ [secret('API_PW')] | string }}",
    "{{ secret('API_PW') | regex_replace('[0-9]', '#') }}",
    "{{ secret('API_PW') | regex_search('h(.*)') }}",
    "{{ secret('API_PW') | sha256 }}",
    "{{ 'payload' | hmac_sha256(secret('API_PW')) }}",
    "{{ secret('API_PW') | urlencode }}",
    "{{ {'q': secret('API_PW')} | urlencode }}",
    "{{ secret('API_PW') | b64encode | b64decode }}",
    "{{ secret('API_PW') | replace('hunter', 'x') }}",
    "{{ secret('API_PW') | truncate(9, true, '') }}",
    "{{ 'x' ~ (secret('API_PW') | upper) }}",
    "{% for c in secret('API_PW') %}{{ c }}.{% endfor %}",
    "{{ secret('API_PW') | list | map('upper') | join }}",
    "{{ [secret('API_PW') | upper, 'x'] | join(',') }}",
    "{{ secret('API_PW') | first ~ secret('API_PW') | last }}",
    "{{ secret('API_PW') | trim | capitalize }}",
]


@pytest.fixture
def engine() -> ExpressionEngine:
    return ExpressionEngine()


def context(**extra: Any) -> dict[str, Any]:
    return {SECRETS_KEY: SECRETS.get, "input": {"id": "A-1", "name": "Ada"}, **extra}


def shown(value: Any) -> str:
    """The value as the journal and the API show it (masked by the secret values a store knows)."""
    return repr(redact_value(value, [CANARY]))


def leaks(text: str) -> list[str]:
    return [form for form in FORMS if form in text]


@pytest.mark.parametrize("source", DERIVED)
def test_a_value_derived_from_a_secret_stays_marked_and_is_masked(engine: ExpressionEngine, source: str) -> None:
    value = engine.compile(source).render(context())
    assert isinstance(value, Secret), f"{source} lost the secret mark: {type(value).__name__}"
    assert leaks(shown(value)) == []
    assert shown(value) == "'***'"


def test_text_joined_with_a_secret_is_shown_with_the_secret_masked(engine: ExpressionEngine) -> None:
    value = engine.compile("Bearer {{ secret('API_PW') }}").render(context())
    assert type(value) is SecretText and value == f"Bearer {CANARY}"  # sent as it is
    assert redact_value(value, [CANARY]) == "Bearer ***"
    mixed = engine.compile("{{ secret('API_PW') ~ (secret('API_PW') | upper)[0:3] }}").render(context())
    assert type(mixed) is Secret and redact_value(mixed, [CANARY]) == "***"  # a derived part: masked whole
    twice = engine.compile("{{ secret('API_PW') * 2 }}").render(context())
    assert isinstance(twice, Secret) and redact_value(twice, [CANARY]) == "******"


def test_strings_of_a_list_or_object_built_from_a_secret_are_marked(engine: ExpressionEngine) -> None:
    value = engine.compile(
        {"auth": "{{ ('user:' ~ secret('API_PW')) | b64encode }}", "chars": "{{ secret('API_PW') | list }}"}
        | {"id": "{{ input.id }}", "pair": "{{ [secret('API_PW') | upper, input.name] }}"}
    ).render(context())
    assert isinstance(value["auth"], Secret)
    assert all(isinstance(c, Secret) for c in value["chars"])
    assert isinstance(value["pair"][0], Secret)
    assert type(value["id"]) is str and type(value["pair"][1]) is str  # data next to a secret stays data
    assert leaks(shown(value)) == [] and "A-1" in shown(value) and "Ada" in shown(value)
    parsed = engine.compile("{{ ({'pw': secret('API_PW') | upper} | tojson | fromjson).pw }}").render(context())
    assert isinstance(parsed, Secret)


def test_a_later_render_of_the_run_keeps_the_mark_through_the_context_switch(engine: ExpressionEngine) -> None:
    switch = Taint()
    scope = context(**{TAINT_KEY: switch, "vars": {}})
    scope["vars"]["pw"] = engine.compile("{{ secret('API_PW') }}").render(scope)
    assert switch.active
    for source in ("{{ vars.pw | sha256 }}", "{{ vars.pw[2:8] }}", "{{ vars | tojson }}", "{{ vars.pw | list }}"):
        value = engine.compile(source).render(scope)
        assert leaks(shown(value)) == [], source
    copy = {**scope, "params": {"pw": scope["vars"]["pw"]}}  # copies share the switch
    assert isinstance(engine.compile("{{ params.pw | b64encode | sha256 }}").render(copy), Secret)


def test_renders_without_a_secret_are_not_marked(engine: ExpressionEngine) -> None:
    scope = context(**{TAINT_KEY: Taint()})
    for source in ("{{ input.name | upper }}", "{{ input | tojson }}", "x {{ input.id }}", "{{ input.id[0:2] }}"):
        assert type(engine.compile(source).render(scope)) is str
    scope[TAINT_KEY].active = True
    assert type(engine.compile("{{ input.name | b64encode }}").render(scope)) is str
    value = engine.compile("{{ [secret('API_PW'), input.name] | tojson }}").render(scope)
    assert isinstance(value, Secret)


@pytest.mark.parametrize(
    "source",
    [
        "{{ (secret('API_PW') | upper) | int }}",
        "{{ secret('API_PW') | upper | parse_date }}",
        "{{ secret('API_PW') | upper | fromjson }}",
        "{{ (secret('API_PW') | b64encode) | decimal }}",
        "{{ secret('API_PW') | upper | format_date('%d') }}",
    ],
)
def test_an_error_on_a_derived_value_never_shows_it(engine: ExpressionEngine, source: str) -> None:
    with pytest.raises(RenderError) as caught:
        engine.compile(source).render(context())
    assert leaks(str(caught.value)) == [], str(caught.value)
    assert "derived from a secret" in str(caught.value)


def test_the_store_masks_derived_values_in_text_once_it_has_met_them() -> None:
    store = SecretStore({"API_PW": CANARY}, environ={})
    derived = ExpressionEngine().compile("{{ ('user:' ~ secret('API_PW')) | b64encode }}")
    value = derived.render({SECRETS_KEY: store.resolve})
    echoed = f"401: rejected Basic {value} for user"
    assert store.redact(echoed) == echoed  # not met yet: only the secret itself is known
    store.note({"headers": {"Authorization": value}})  # what a connector is about to be sent
    assert leaks(store.redact(echoed)) == [] and store.redact(echoed) == "401: rejected Basic *** for user"
    assert store.redact_value({"echo": echoed, "auth": value}) == {
        "echo": "401: rejected Basic *** for user",
        "auth": "***",
    }


def test_the_error_hiding_only_applies_to_secret_values(engine: ExpressionEngine) -> None:
    with pytest.raises(RenderError, match="'Ada'"):
        engine.compile("{{ input.name | int }}").render(context(**{TAINT_KEY: Taint()}))
    with pytest.raises(ExpressionError, match="derived from a secret"):
        engine.compile("{{ secret('API_PW') | int }}").render(context())

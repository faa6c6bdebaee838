"""YAML examples of every document kind, trigger, step and connector, shown in docs/reference.md.

Each example is a complete document so a test can validate it as it stands.
"""

from __future__ import annotations

_FLOW_HEAD = """kind: Flow
name: example-{name}
trigger: {{manual: {{}}}}
steps:
"""

KIND_EXAMPLES: dict[str, list[str]] = {
    "Project": [
        """
kind: Project
name: acme-integrations
store: sqlite:///.syncline/syncline.db
defaults:
  timeout: 30s
  retry: {attempts: 4, initial: 1s, max: 1m, on: [timeout, connect, 429, 5xx]}
"""
    ],
    "Connection": [
        """
kind: Connection
name: erp
type: http
config:
  base_url: "{{ env('ERP_URL') }}"
  auth: {type: bearer, token: "{{ secret('ERP_TOKEN') }}"}
  timeout: 10s
operations:
  create_sales_order: {method: POST, path: /sales-orders, body: "{{ params.body }}", entity: order, effect: create}
"""
    ],
    "Ownership": [
        """
kind: Ownership
name: master-data
entities:
  customer:
    owner: erp
    fields: {name: crm, email: crm, phone: crm, credit_status: erp, payment_terms: erp}
    requesters: [crm]
  order: {owner: erp, requesters: [webshop, crm]}
"""
    ],
    "Policy": [
        """
kind: Policy
name: finance-controls
rules:
  - id: erp-writes-idempotent
    match: {system: erp, effect: [create, update, upsert, command]}
    require: {idempotency_key: true, retry: true}
  - id: big-orders-need-approval
    match: {operation: erp.create_sales_order}
    when: "{{ params.body.total > 100000 }}"
    action: hold
    approvers: finance-ops
  - id: mask-pii
    match: {entity: customer}
    mask: ["$.email", "$.phone", "$.tax_id"]
  - id: erp-maintenance
    match: {system: erp}
    window: {cron: "0 2 * * SUN", duration: 2h, timezone: UTC}
    action: buffer
"""
    ],
    "StateMachine": [
        """
kind: StateMachine
name: order-lifecycle
entity: order
initial: received
transitions:
  received: [validated, rejected]
  validated: [submitted]
  submitted: [accepted, rejected]
"""
    ],
    "Flow": [
        """
kind: Flow
name: webshop-order-to-erp
owner: order-ops
source: {system: webshop, entity: order}
trigger:
  webhook:
    path: /hooks/webshop/orders
    auth: {type: hmac_sha256, secret: "{{ secret('WEBSHOP_HOOK_SECRET') }}", header: X-Signature}
    idempotency_key: "{{ input.id }}"
steps:
  - id: order
    map: webshop_order_to_erp
  - id: post
    call: erp.create_sales_order
    with: {body: "{{ steps.order.output }}"}
    retry: {attempts: 6, initial: 1s, max: 5m}
"""
    ],
    "Mapping": [
        """
kind: Mapping
name: webshop_order_to_erp
fields:
  order_ref: "{{ input.id }}"
  currency: "{{ input.currency | upper }}"
  lines: "{{ input.lines | map_each({'item': '{{ item.sku }}', 'amount': '{{ item.qty * item.unit_price }}'}) }}"
  total: "{{ input.lines | sum_of('qty * unit_price') | round_money(2) }}"
tests:
  - input: {id: A-1, currency: eur, lines: [{sku: X, qty: 3, unit_price: 0.1}]}
    output: {order_ref: A-1, currency: EUR, lines: [{item: X, amount: 0.3}], total: 0.30}
""",
        """
kind: Mapping
name: invoice_to_erp
template: mappings/invoice_to_erp.json.j2
""",
    ],
    "FlowTest": [
        """
kind: FlowTest
name: big order is held for approval
flow: webshop-order-to-erp
input: {file: tests/flows/data/big_order.json}
mocks:
  erp.find_customer: {output: [{customer_no: "C-9"}]}
  erp.create_sales_order: {output: {id: "SO-1"}}
expect:
  status: held
  calls: [{operation: erp.find_customer, params: {tax_id: "DE123"}}]
  not_called: [erp.create_sales_order]
"""
    ],
}

TRIGGER_EXAMPLES: dict[str, list[str]] = {
    "webhook": [
        _FLOW_HEAD.format(name="webhook").replace(
            "trigger: {manual: {}}",
            "trigger:\n  webhook:\n    path: /hooks/crm/opportunity\n    auth: {type: api_key, secret: \"{{ secret('CRM_KEY') }}\","
            " header: X-Api-Key}\n    schema: schemas/opportunity.json\n    mode: sync",
        )
        + "  - respond: {status: 200, body: {ok: true}}\n"
    ],
    "schedule": [
        _FLOW_HEAD.format(name="schedule").replace(
            "trigger: {manual: {}}",
            'trigger: {schedule: {cron: "*/15 * * * *", timezone: Europe/Berlin, overlap: skip}}',
        )
        + "  - call: crm.list_accounts_changed\n"
    ],
    "poll": [
        _FLOW_HEAD.format(name="poll").replace(
            "trigger: {manual: {}}",
            "trigger:\n  poll:\n    call: billing.list_invoices\n    every: 5m\n    cursor: {param: updated_since, "
            'value: "{{ items | map(attribute=\'updated_at\') | max }}", initial: "2026-01-01T00:00:00Z"}\n'
            '    items: "$.data[*]"\n    key: "{{ item.id }}"',
        )
        + '  - call: erp.post_invoice\n    with: {body: "{{ input }}"}\n'
    ],
    "queue": [
        _FLOW_HEAD.format(name="queue").replace(
            "trigger: {manual: {}}",
            'trigger: {queue: {connection: events, subject: "crm.opportunity.closed"}}',
        )
        + '  - call: erp.create_sales_order\n    with: {body: "{{ input }}"}\n'
    ],
    "event": [
        _FLOW_HEAD.format(name="event").replace("trigger: {manual: {}}", "trigger: {event: {name: order.submitted}}")
        + '  - call: crm.update_opportunity\n    with: {id: "{{ input.order_ref }}"}\n'
    ],
    "file": [
        _FLOW_HEAD.format(name="file").replace(
            "trigger: {manual: {}}",
            'trigger: {file: {connection: finance_drop, pattern: "*.csv", format: csv}}',
        )
        + '  - call: erp.post_invoice\n    with: {body: "{{ input }}"}\n'
    ],
    "manual": [_FLOW_HEAD.format(name="manual") + "  - set: {greeting: hello}\n"],
}


def _steps(name: str, body: str) -> str:
    return _FLOW_HEAD.format(name=name) + body.strip("\n") + "\n"


STEP_EXAMPLES: dict[str, list[str]] = {
    "validate": [_steps("validate", "  - validate: schemas/webshop_order.json")],
    "map": [_steps("map", "  - id: order\n    map: mappings/webshop_order_to_erp.yaml")],
    "set": [_steps("set", '  - set: {total: "{{ input.total }}", region: EU}')],
    "call": [
        _steps(
            "call",
            """
  - id: post
    call: erp.create_sales_order
    with: {body: "{{ input }}"}
    idempotency_key: "order-{{ input.id }}"
    retry: {attempts: 6, backoff: exponential, initial: 1s, max: 5m, on: [timeout, connect, 429, 5xx]}
    timeout: 15s
    on_error: dead_letter
    compensate:
      call: erp.cancel_sales_order
      with: {id: "{{ steps.post.output.id }}"}
""",
        )
    ],
    "switch": [
        _steps(
            "switch",
            """
  - switch:
      - when: "{{ input.total > 1000 }}"
        steps:
          - set: {tier: large}
      - steps:
          - set: {tier: small}
""",
        )
    ],
    "filter": [_steps("filter", "  - filter: \"{{ input.status == 'paid' }}\"")],
    "foreach": [
        _steps(
            "foreach",
            """
  - foreach: "{{ input.lines }}"
    as: line
    concurrency: 4
    steps:
      - call: wms.reserve
        with: {sku: "{{ line.sku }}", qty: "{{ line.qty }}"}
""",
        )
    ],
    "emit": [_steps("emit", '  - emit: {event: order.submitted, data: {order_ref: "{{ input.id }}"}}')],
    "wait": [
        _steps(
            "wait",
            """
  - wait: {event: erp.order.acknowledged, match: "{{ event.order_ref == input.id }}", timeout: 2h, on_timeout: dead_letter}
""",
        )
    ],
    "transition": [
        _steps("transition", '  - transition: {machine: order-lifecycle, key: "{{ input.id }}", to: submitted}')
    ],
    "fail": [
        _steps(
            "fail",
            """
  - fail: {code: CUSTOMER_NOT_IN_ERP, message: "customer {{ input.customer.id }} unknown", route_to: master-data}
""",
        )
    ],
    "respond": [_steps("respond", '  - respond: {status: 201, body: {id: "{{ input.id }}"}}')],
    "reconcile": [
        _steps(
            "reconcile",
            """
  - reconcile:
      left: {call: billing.list_invoices, items: "$.data[*]"}
      right: {call: erp.list_invoices}
      key: "{{ item.invoice_no }}"
      fields: [total, currency]
      tolerance: {total: 0.01}
""",
        )
    ],
    "flow": [_steps("flow", '  - flow: enrich-customer\n    with: {customer_id: "{{ input.customer.id }}"}')],
}

CONNECTION_EXAMPLES: dict[str, list[str]] = {
    "http": [KIND_EXAMPLES["Connection"][0]],
    "sql": [
        """
kind: Connection
name: warehouse
type: sql
config: {url: "sqlite:///data/warehouse.db"}
operations:
  stock_of: {sql: "SELECT sku, qty FROM stock WHERE sku = :sku", params: {sku: "{{ params.sku }}"}, mode: query_one,
             entity: stock, effect: read}
"""
    ],
    "file": [
        """
kind: Connection
name: finance_drop
type: file
config: {base_dir: data/finance}
operations:
  write_report: {action: write, path: "out/{{ params.day }}.json", format: json, entity: report, effect: create}
"""
    ],
}

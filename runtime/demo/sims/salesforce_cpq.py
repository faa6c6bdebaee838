"""A Salesforce CPQ simulator: the Salesforce REST API of `salesforce.py` (JWT bearer sign-in, SOQL,
sObjects) in an org with the CPQ managed package (namespace `SBQQ`), enough for the `salesforce_cpq`
preset and `simple-salesforce` (`sf.SBQQ__Quote__c`, `sf.apexecute`) pointed at it.

- sObjects: `SBQQ__Quote__c` and `SBQQ__QuoteLine__c` next to Account, Opportunity, Product2,
  Pricebook2, PricebookEntry, Order and OrderItem (query, get, create, update, delete, upsert);
- the CPQ API (https://developer.salesforce.com/docs/atlas.en-us.cpq_dev_api.meta) under
  `/services/apexrest/SBQQ/ServiceRouter`; its answers are Apex strings, i.e. a JSON text of the model
  inside a JSON string, and the `model` / `context` it takes are JSON texts too:
  * `GET ?reader=SBQQ.QuoteAPI.QuoteReader&uid=<quote id>` → QuoteModel (`record`, `lineItems` of
    QuoteLineModel `{record, key, …}`, `lineItemGroups`, `nextKey`, `netTotal`, `customerTotal`);
  * `POST {"saver": "SBQQ.QuoteAPI.QuoteSaver", "model": "<QuoteModel>"}` → saves the quote, creates the
    lines without an Id, updates the others, deletes the quote's lines the model no longer holds;
  * `PATCH ?loader=SBQQ.QuoteAPI.QuoteCalculator {"context": "{\\"quote\\": <QuoteModel>}"}` → the model
    priced (not saved): net price = list price less the line's discount % (rounded to the currency's
    decimals), line net total = net price × quantity, the quote's `SBQQ__NetAmount__c` their sum;
  * `PATCH ?loader=SBQQ.QuoteAPI.QuoteProductAdder {"context": "{quote, products, groupKey}"}` → the
    model with a line per product (list price from the quote's price book), calculated;
  * `PATCH ?loader=SBQQ.ProductAPI.ProductLoader&uid=<product id> {"context": "{pricebookId,
    currencyCode}"}` → ProductModel (`record` with its `PricebookEntries`, `currencyCode`);
- ordering: setting `SBQQ__Ordered__c` to true on a quote creates an Order (Draft) with one OrderItem
  per quote line, as CPQ does;
- errors: an unknown reader/loader/saver or a missing record is Apex's answer, 500
  `[{"errorCode": "APEX_ERROR", "message": "…"}]`; an invalid model is 400 `JSON_PARSER_ERROR`.
"""

from __future__ import annotations

import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from runtime.demo.sims.salesforce import PREFIXES, REQUIRED, SalesforceSim, errors
from runtime.expr import dumps, loads

ROUTER = "/services/apexrest/SBQQ/ServiceRouter"
API_VERSION = "59.0"
CPQ_PREFIXES = {
    **PREFIXES,
    "Pricebook2": "01s",
    "PricebookEntry": "01u",
    "OrderItem": "802",
    "SBQQ__Quote__c": "a0x",
    "SBQQ__QuoteLine__c": "a0w",
}
CPQ_REQUIRED = {**REQUIRED, "SBQQ__QuoteLine__c": ("SBQQ__Quote__c", "SBQQ__Product__c")}
DECIMALS = {"JPY": 0, "KWD": 3, "BHD": 3}  # the currency's decimals; 2 for the others
QUOTE_FIELDS = ("SBQQ__Account__c", "SBQQ__Opportunity2__c", "SBQQ__PriceBook__c", "SBQQ__Status__c",
                "SBQQ__Primary__c", "SBQQ__StartDate__c", "SBQQ__SubscriptionTerm__c", "CurrencyIsoCode",
                "SBQQ__Ordered__c")  # fmt: skip
CALCULATED = ("SBQQ__NetAmount__c", "SBQQ__CustomerAmount__c", "SBQQ__ListAmount__c")


def _money(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _round(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-DECIMALS.get(currency.upper(), 2)), ROUND_HALF_UP)


class ApexError(Exception):
    """An exception inside the CPQ package: Apex REST answers 500 APEX_ERROR."""


class SalesforceCpqSim(SalesforceSim):
    name = "salesforce_cpq"
    objects = CPQ_PREFIXES
    required = CPQ_REQUIRED

    def seed(self) -> None:
        super().seed()
        account, opportunity = self._id("Account", 1), self._id("Opportunity", 1)
        book = self._store("Pricebook2", {"Name": "Standard Price Book", "IsStandard": True, "IsActive": True})
        pro = self._store("Product2", {"Name": "Syncline Pro", "ProductCode": "SL-PRO", "IsActive": True,
                                       "SBQQ__SubscriptionTerm__c": 12})  # fmt: skip
        pack = self._store("Product2", {"Name": "Connector Pack", "ProductCode": "SL-CONN", "IsActive": True})
        for product, price in ((pro, "490.00"), (pack, "120.00")):
            entry = {"Pricebook2Id": book["Id"], "Product2Id": product["Id"], "CurrencyIsoCode": "EUR"}
            self._store("PricebookEntry", {**entry, "UnitPrice": Decimal(price), "IsActive": True})
        quote = self._store("SBQQ__Quote__c", {
            "SBQQ__Account__c": account, "SBQQ__Opportunity2__c": opportunity, "SBQQ__PriceBook__c": book["Id"],
            "SBQQ__Status__c": "Approved", "SBQQ__Primary__c": True, "SBQQ__StartDate__c": "2026-12-01",
            "SBQQ__SubscriptionTerm__c": 12, "CurrencyIsoCode": "EUR", "SBQQ__Ordered__c": False})  # fmt: skip
        for number, (product, quantity, discount) in enumerate(((pro, 10, 10), (pack, 3, None)), start=1):
            self._line(quote, product, quantity, discount, number)
        self._recalculate_saved(quote["Id"])

    # ---------------------------------------------------------------------------------------- model

    def _entry(self, book: Any, product: Any, currency: Any) -> dict[str, Any] | None:
        """The price book entry of a product in a price book and currency."""
        wanted = (product, book, currency)
        for entry in self.data["PricebookEntry"].values():
            if (entry["Product2Id"], entry["Pricebook2Id"], entry["CurrencyIsoCode"]) == wanted:
                return dict(entry)
        return None

    def _line(self, quote: dict[str, Any], product: dict[str, Any], quantity: Any, discount: Any,
              number: int) -> dict[str, Any]:  # fmt: skip
        entry = self._entry(quote.get("SBQQ__PriceBook__c"), product["Id"], quote.get("CurrencyIsoCode", "EUR"))
        return self._store("SBQQ__QuoteLine__c", {
            "SBQQ__Quote__c": quote["Id"], "SBQQ__Product__c": product["Id"], "SBQQ__ProductCode__c":
            product.get("ProductCode"), "SBQQ__ProductName__c": product["Name"], "SBQQ__Number__c": number,
            "SBQQ__Quantity__c": Decimal(quantity), "SBQQ__Discount__c": discount,
            "SBQQ__ListPrice__c": entry["UnitPrice"] if entry else None, "SBQQ__PricebookEntryId__c":
            entry["Id"] if entry else None})  # fmt: skip

    def _sobject(self, sobject: str, record: dict[str, Any]) -> dict[str, Any]:
        url = f"/services/data/v{API_VERSION}/sobjects/{sobject}/{record['Id']}" if record.get("Id") else None
        return {"attributes": {"type": sobject, **({"url": url} if url else {})}, **record}

    def _lines_of(self, quote_id: str) -> list[dict[str, Any]]:
        lines = [line for line in self.data["SBQQ__QuoteLine__c"].values() if line["SBQQ__Quote__c"] == quote_id]
        return sorted(lines, key=lambda line: line.get("SBQQ__Number__c") or 0)

    def quote_model(self, quote_id: str) -> dict[str, Any]:
        """The QuoteModel of a saved quote, as the QuoteReader answers it."""
        quote = self.data["SBQQ__Quote__c"].get(quote_id)
        if quote is None:
            raise ApexError(f"SBQQ.QuoteAPI.QuoteReaderException: no quote with Id {quote_id}")
        items = [self._line_model(self._sobject("SBQQ__QuoteLine__c", line), key)
                 for key, line in enumerate(self._lines_of(quote_id), start=1)]  # fmt: skip
        return self._totals({
            "record": self._sobject("SBQQ__Quote__c", quote), "lineItems": items, "lineItemGroups": [],
            "nextKey": len(items) + 1, "applyAdditionalDiscountLast": False, "applyPartnerDiscountFirst": False,
            "channelDiscountsOffBiggestDiscount": False, "calculationRequired": False})  # fmt: skip

    @staticmethod
    def _line_model(record: dict[str, Any], key: int) -> dict[str, Any]:
        return {"record": record, "key": key, "parentGroupKey": None, "parentItemKey": None,
                "amountDiscountProrated": False, "upliftable": False, "configurationType": "",
                "configurationEvent": "", "reconfigurationDisabled": False, "descriptionLocked": False,
                "productQuantityEditable": True, "productQuantityScale": 0, "dimensionType": None,
                "productHasDimensions": False, "targetCustomerAmount": None, "targetCustomerTotal": None}  # fmt: skip

    @staticmethod
    def _totals(model: dict[str, Any]) -> dict[str, Any]:
        """Price every line and total the quote (what CPQ's calculator does, for list price and discount %)."""
        quote = model["record"]
        currency = str(quote.get("CurrencyIsoCode") or "EUR")
        net_total = list_total = Decimal(0)
        for item in model.get("lineItems", []):
            line = item["record"]
            list_price = _money(line.get("SBQQ__ListPrice__c"))
            quantity = _money(line.get("SBQQ__Quantity__c") or 1)
            discount = _money(line.get("SBQQ__Discount__c"))
            net_price = _round(list_price * (1 - discount / 100), currency)
            line.update(SBQQ__RegularPrice__c=list_price, SBQQ__CustomerPrice__c=net_price,
                        SBQQ__NetPrice__c=net_price, SBQQ__NetTotal__c=_round(net_price * quantity, currency),
                        SBQQ__ListTotal__c=_round(list_price * quantity, currency))  # fmt: skip
            net_total += line["SBQQ__NetTotal__c"]
            list_total += line["SBQQ__ListTotal__c"]
        quote.update(SBQQ__NetAmount__c=net_total, SBQQ__CustomerAmount__c=net_total, SBQQ__ListAmount__c=list_total)
        model.update(netTotal=net_total, customerTotal=net_total, calculationRequired=False)
        return model

    def _recalculate_saved(self, quote_id: str) -> None:
        model = self.quote_model(quote_id)
        for item in model["lineItems"]:
            saved = self.data["SBQQ__QuoteLine__c"][item["record"]["Id"]]
            saved.update({k: v for k, v in item["record"].items() if k.startswith("SBQQ__") and k.endswith("__c")})
        quote = self.data["SBQQ__Quote__c"][quote_id]
        quote.update({k: model["record"][k] for k in CALCULATED})

    def _save(self, model: dict[str, Any]) -> str:
        """QuoteSaver: the quote's writable fields, new and changed lines, removed lines deleted."""
        record = dict(model.get("record") or {})
        quote_id = record.get("Id")
        if quote_id is None:
            account = record.get("SBQQ__Account__c")
            if not account:
                raise ApexError("SBQQ.QuoteAPI.QuoteSaverException: SBQQ__Account__c is required for a new quote")
            quote = self._store("SBQQ__Quote__c", {k: record[k] for k in QUOTE_FIELDS if k in record})
            quote_id = quote["Id"]
        elif quote_id not in self.data["SBQQ__Quote__c"]:
            raise ApexError(f"SBQQ.QuoteAPI.QuoteSaverException: no quote with Id {quote_id}")
        else:
            quote = self.data["SBQQ__Quote__c"][quote_id]
            quote.update({k: record[k] for k in QUOTE_FIELDS if k in record})
        kept: set[str] = set()
        for number, item in enumerate(model.get("lineItems") or [], start=1):
            line = {k: v for k, v in (item.get("record") or {}).items() if k != "attributes"}
            line_id = line.pop("Id", None)
            if line_id in self.data["SBQQ__QuoteLine__c"]:
                self.data["SBQQ__QuoteLine__c"][line_id].update(line)
                kept.add(line_id)
                continue
            if not line.get("SBQQ__Product__c"):
                raise ApexError("SBQQ.QuoteAPI.QuoteSaverException: a quote line needs SBQQ__Product__c")
            line.setdefault("SBQQ__Number__c", number)
            kept.add(self._store("SBQQ__QuoteLine__c", {**line, "SBQQ__Quote__c": quote_id})["Id"])
        for old in [line["Id"] for line in self._lines_of(quote_id) if line["Id"] not in kept]:
            del self.data["SBQQ__QuoteLine__c"][old]
        self._recalculate_saved(quote_id)
        return str(quote_id)

    def _add_products(self, context: dict[str, Any]) -> dict[str, Any]:
        model = context.get("quote")
        if not isinstance(model, dict) or not isinstance(model.get("record"), dict):
            raise ApexError("SBQQ.QuoteAPI.QuoteProductAdderException: the context needs a quote")
        quote = model["record"]
        items = model.setdefault("lineItems", [])
        key = int(model.get("nextKey") or len(items) + 1)
        for product_model in context.get("products") or []:
            product_id = (product_model.get("record") or {}).get("Id")
            product = self.data["Product2"].get(str(product_id))
            if product is None:
                raise ApexError(f"SBQQ.QuoteAPI.QuoteProductAdderException: no product with Id {product_id}")
            entry = self._entry(quote.get("SBQQ__PriceBook__c"), product["Id"], quote.get("CurrencyIsoCode", "EUR"))
            line = {"SBQQ__Product__c": product["Id"], "SBQQ__ProductCode__c": product.get("ProductCode"),
                    "SBQQ__ProductName__c": product["Name"], "SBQQ__Quantity__c": Decimal(1),
                    "SBQQ__ListPrice__c": entry["UnitPrice"] if entry else None,
                    "SBQQ__PricebookEntryId__c": entry["Id"] if entry else None}  # fmt: skip
            if quote.get("Id"):
                line["SBQQ__Quote__c"] = quote["Id"]
            items.append(self._line_model({"attributes": {"type": "SBQQ__QuoteLine__c"}, **line}, key))
            key += 1
        model["nextKey"] = key
        return model if context.get("ignoreCalculate") else self._totals(model)

    def _product(self, product_id: str, context: dict[str, Any]) -> dict[str, Any]:
        product = self.data["Product2"].get(product_id)
        if product is None:
            raise ApexError(f"SBQQ.ProductAPI.ProductLoaderException: no product with Id {product_id}")
        currency = str(context.get("currencyCode") or "EUR")
        entries = [self._sobject("PricebookEntry", e) for e in self.data["PricebookEntry"].values()
                   if e["Product2Id"] == product_id and e["CurrencyIsoCode"] == currency
                   and (not context.get("pricebookId") or e["Pricebook2Id"] == context["pricebookId"])]  # fmt: skip
        record = {**self._sobject("Product2", product),
                  "PricebookEntries": {"totalSize": len(entries), "done": True, "records": entries}}  # fmt: skip
        return {"record": record, "options": [], "features": [], "configurationAttributes": [],
                "upgradedAssetId": None, "currencySymbol": currency, "currencyCode": currency,
                "featureCategories": [], "constraints": [], "configuration": None}  # fmt: skip

    def _order(self, quote_id: str) -> None:
        """What CPQ does when a quote is marked ordered: a Draft order with one product per quote line."""
        quote = self.data["SBQQ__Quote__c"][quote_id]
        if any(o.get("SBQQ__Quote__c") == quote_id for o in self.data["Order"].values()):
            return
        order = self._store("Order", {
            "AccountId": quote.get("SBQQ__Account__c"), "OpportunityId": quote.get("SBQQ__Opportunity2__c"),
            "EffectiveDate": quote.get("SBQQ__StartDate__c") or time.strftime("%Y-%m-%d", time.gmtime()),
            "Status": "Draft", "SBQQ__Quote__c": quote_id, "Pricebook2Id": quote.get("SBQQ__PriceBook__c"),
            "CurrencyIsoCode": quote.get("CurrencyIsoCode"),
            "TotalAmount": quote.get("SBQQ__NetAmount__c")})  # fmt: skip
        for line in self._lines_of(quote_id):
            self._store("OrderItem", {
                "OrderId": order["Id"], "Product2Id": line["SBQQ__Product__c"], "SBQQ__QuoteLine__c": line["Id"],
                "Quantity": line.get("SBQQ__Quantity__c"), "UnitPrice": line.get("SBQQ__NetPrice__c"),
                "PricebookEntryId": line.get("SBQQ__PricebookEntryId__c")})  # fmt: skip

    # ------------------------------------------------------------------------------------- handlers

    @staticmethod
    def _apex_string(value: Any) -> Response:
        """An Apex REST method returning a String: the model's JSON text as a JSON string."""
        return Response(dumps(dumps(value)), media_type="application/json;charset=UTF-8")

    async def service_router(self, request: Request) -> Response:
        denied = self._guard(request)
        if denied is not None:
            return denied
        params = request.query_params
        try:
            body = loads(await request.body() or b"{}") if request.method != "GET" else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            if request.method == "GET":
                if params.get("reader") != "SBQQ.QuoteAPI.QuoteReader":
                    raise ApexError(f"SBQQ.ServiceRouter: unknown reader {params.get('reader')!r}")
                return self._apex_string(self.quote_model(params.get("uid", "")))
            if request.method == "POST":
                if body.get("saver") != "SBQQ.QuoteAPI.QuoteSaver":
                    raise ApexError(f"SBQQ.ServiceRouter: unknown saver {body.get('saver')!r}")
                model = loads(str(body.get("model") or ""))
                if not isinstance(model, dict):
                    raise ValueError("the model must be a QuoteModel object")
                return self._apex_string(self.quote_model(self._save(model)))
            context = loads(str(body.get("context") or "{}"))
            if not isinstance(context, dict):
                raise ValueError("the context must be a JSON object")
        except ValueError as exc:
            return errors(400, "JSON_PARSER_ERROR", f"Unexpected character in the request: {exc}")
        except ApexError as exc:
            return errors(500, "APEX_ERROR", str(exc))
        loader = params.get("loader")
        try:
            if loader == "SBQQ.QuoteAPI.QuoteCalculator":
                model = context.get("quote")
                if not isinstance(model, dict) or not isinstance(model.get("record"), dict):
                    raise ApexError("SBQQ.QuoteAPI.QuoteCalculatorException: the context needs a quote")
                return self._apex_string(self._totals(model))
            if loader == "SBQQ.QuoteAPI.QuoteProductAdder":
                return self._apex_string(self._add_products(context))
            if loader == "SBQQ.ProductAPI.ProductLoader":
                return self._apex_string(self._product(params.get("uid", ""), context))
            raise ApexError(f"SBQQ.ServiceRouter: unknown loader {loader!r}")
        except ApexError as exc:
            return errors(500, "APEX_ERROR", str(exc))

    async def record(self, request: Request) -> Response:
        """sObject get/update/delete; a quote updated to `SBQQ__Ordered__c: true` is ordered."""
        response = await super().record(request)
        sobject, ident = request.path_params["sobject"], request.path_params["id"]
        ordered = request.method == "PATCH" and sobject == "SBQQ__Quote__c" and response.status_code == 204
        if ordered and self.data["SBQQ__Quote__c"][ident].get("SBQQ__Ordered__c") is True:
            self._order(ident)
        return response

    def vendor_routes(self) -> list[BaseRoute]:
        return [*super().vendor_routes(), Route(ROUTER, self.service_router, methods=["GET", "POST", "PATCH"])]


SIM = SalesforceCpqSim

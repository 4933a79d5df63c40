"""Object-level authorization, enumerated from the API's own OpenAPI schema.

The promise: another merchant's object is 404 — never 403 (which would confirm it exists),
never 200, never 500 — on every route and method that names an object, whether the caller
holds an API key or a dashboard session, and the owner's object is left exactly as it was.

Coverage cannot rot silently: the routes come from ``/openapi.json`` of the running API, and a
route with a path parameter (or a query or body field naming an object) that ``ROUTES`` or
``REFERENCES`` does not know fails ``test_every_route_that_names_an_object_is_exercised``.
Each 404 is also compared with the answer for an id that never existed, so the answer cannot
tell "someone else's" from "nobody's", and each route is then called by the owner on the very
same object to prove the id was real and the route reachable (no vacuous 404s).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import psycopg
import pytest

from ledger.settle import settle_day
from payflow.cli.user import ensure_user
from tests.harness import RunningStack

pytestmark = pytest.mark.integration

PASSWORD = "object level authorization"
CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}
CLOSED_PORT_URL = "http://127.0.0.1:9/hooks"
QUIET_EVENTS = ["payment.failed"]
"""Endpoints here subscribe only to an event this module never causes (every payment uses an
approving card), so no background delivery changes them while they are being compared."""

Kind = Literal["captured_payment", "authorized_payment", "payout", "endpoint", "delivery"]


@dataclass(frozen=True)
class Exercise:
    """How to call one route on one of the first merchant's objects."""

    kind: Kind
    """Which object the path parameter names."""
    owner_status: int
    """What the owner gets on its own object: proves the id is real and the route reachable."""
    body: dict[str, Any] | None = None


ROUTES: dict[tuple[str, str], Exercise] = {
    ("GET", "/v1/payments/{payment_id}"): Exercise("captured_payment", 200),
    ("GET", "/v1/payments/{payment_id}/timeline"): Exercise("captured_payment", 200),
    ("GET", "/v1/payments/{payment_id}/ledger_entries"): Exercise("captured_payment", 200),
    ("POST", "/v1/payments/{payment_id}/capture"): Exercise("authorized_payment", 200, {}),
    ("POST", "/v1/payments/{payment_id}/void"): Exercise("authorized_payment", 200, {}),
    ("POST", "/v1/payments/{payment_id}/refund"): Exercise("captured_payment", 200,
                                                           {"amount": 100}),
    ("POST", "/v1/payments/{payment_id}/dispute"): Exercise("captured_payment", 200,
                                                            {"reason": "fraudulent"}),
    ("GET", "/v1/payouts/{payout_id}/report.csv"): Exercise("payout", 200),
    ("GET", "/api/payouts/{payout_id}/report.csv"): Exercise("payout", 200),
    ("GET", "/v1/webhook_endpoints/{endpoint_id}"): Exercise("endpoint", 200),
    ("PATCH", "/v1/webhook_endpoints/{endpoint_id}"): Exercise(
        "endpoint", 200, {"url": "http://127.0.0.1:9/taken-over", "description": "taken over"}),
    ("DELETE", "/v1/webhook_endpoints/{endpoint_id}"): Exercise("endpoint", 200),
    ("POST", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret"): Exercise(
        "endpoint", 200, {"overlap_seconds": 0}),
    ("GET", "/api/webhooks/deliveries/{delivery_id}"): Exercise("delivery", 200),
    ("POST", "/api/webhooks/deliveries/{delivery_id}/resend"): Exercise("delivery", 202),
}
"""Every (method, path) of the schema that has a path parameter. A route that changes its
object gets an object of its own; read-only routes share one per kind."""

REFERENCES: dict[tuple[str, str, str], str] = {
    ("POST", "/v1/payments", "payment_method_id"):
        "paying with another merchant's saved payment method is 404",
    ("POST", "/v1/payments", "customer.id"):
        "the merchant's own label for its customer, not a payflow object: the same label from "
        "another merchant shows that merchant nothing of the first's customer",
    ("POST", "/v1/payments", "customer.device_id"):
        "the buyer's device, a risk signal across merchants by design, never shown back",
    ("GET", "/v1/payments", "starting_after"):
        "another merchant's payment as a cursor answers as an unknown one does",
    ("GET", "/v1/events", "starting_after"):
        "another merchant's event as a cursor answers as an unknown one does",
    ("GET", "/api/webhooks/deliveries", "endpoint_id"):
        "another merchant's endpoint as a filter answers as an unknown one does",
    ("POST", "/api/webhooks/test", "endpoint_id"):
        "a test send to another merchant's endpoint is 404",
}
"""Every query parameter or body field that names an object, and why it is safe; each is
exercised by ``test_ids_in_queries_and_bodies_never_reach_another_merchants_objects``."""

PUBLIC_GETS = frozenset({"/healthz", "/readyz"})
ALL_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


# --- the schema ---------------------------------------------------------------------------

def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        resolved: dict[str, Any] = schema["components"]["schemas"][node["$ref"].split("/")[-1]]
        return resolved
    return node


def _field_names(schema: dict[str, Any], node: dict[str, Any], prefix: str = "",
                 depth: int = 0) -> set[str]:
    """Every property of a request body schema as a dotted path (``customer.id``)."""
    assert depth < 10, "request body schema nests too deeply"
    node = _resolve(schema, node)
    names: set[str] = set()
    for branch in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(branch, []):
            names |= _field_names(schema, sub, prefix, depth + 1)
    for name, sub in node.get("properties", {}).items():
        names.add(prefix + name)
        names |= _field_names(schema, sub, f"{prefix}{name}.", depth + 1)
    if isinstance(node.get("items"), dict):
        names |= _field_names(schema, node["items"], prefix, depth + 1)
    return names


def _names_an_object(name: str) -> bool:
    last = name.rpartition(".")[2]
    return last.endswith("_id") or last in {"id", "starting_after", "ending_before"}


def path_routes(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for method, path, operation in _operations(schema)
            if any(p["in"] == "path" for p in operation.get("parameters", []))}


def object_references(schema: dict[str, Any]) -> set[tuple[str, str, str]]:
    found = set()
    for method, path, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query" and _names_an_object(parameter["name"]):
                found.add((method, path, parameter["name"]))
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            found |= {(method, path, name) for name in _field_names(schema, body["schema"])
                      if _names_an_object(name)}
    return found


@pytest.fixture(scope="module")
def schema(stack: RunningStack) -> dict[str, Any]:
    response = httpx.get(f"{stack.base_url}/openapi.json", timeout=10)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def test_every_route_that_names_an_object_is_exercised(schema: dict[str, Any]) -> None:
    """A new route with a path parameter, or a new id in a query or body, fails here until
    this module knows how to exercise it; a route that disappeared must leave the table."""
    routes = path_routes(schema)
    assert routes, "the schema has no route with a path parameter: wrong document?"
    assert sorted(routes - ROUTES.keys()) == [], "routes naming an object, not exercised here"
    assert sorted(ROUTES.keys() - routes) == [], "exercised routes gone from the schema"
    references = object_references(schema)
    assert sorted(references - REFERENCES.keys()) == [], "ids in queries or bodies, not covered"
    assert sorted(REFERENCES.keys() - references) == [], "covered ids gone from the schema"


# --- the two merchants --------------------------------------------------------------------

@dataclass
class Owner:
    """The first merchant: its API client and the objects it owns."""

    merchant_id: str
    client: httpx.Client
    payout_id: str
    ids: set[str] = field(default_factory=set)
    """Every id this merchant's objects have, to look for in the other merchant's answers."""
    endpoints: list[str] = field(default_factory=list)
    """Endpoints still to delete: a merchant may have at most 16."""

    def make(self, kind: Kind, shared_endpoint: str) -> str:
        if kind == "payout":
            return self.payout_id
        if kind in ("captured_payment", "authorized_payment"):
            created = self.client.post("/v1/payments", json={
                "amount": 5_000, "currency": "usd", "payment_method": CARD,
                "capture": kind == "captured_payment"})
            assert created.status_code == 201, created.text
            transaction = created.json()["transaction"]
            assert transaction["status"] == kind.split("_")[0], transaction
            object_id: str = transaction["id"]
        elif kind == "endpoint":
            object_id = self.new_endpoint()
        else:
            sent = self.client.post("/api/webhooks/test", json={"endpoint_id": shared_endpoint})
            assert sent.status_code == 200, sent.text
            object_id = sent.json()["delivery_id"]
        self.ids.add(object_id)
        return object_id

    def new_endpoint(self) -> str:
        created = self.client.post("/v1/webhook_endpoints", json={
            "url": CLOSED_PORT_URL, "enabled_events": QUIET_EVENTS})
        assert created.status_code == 201, created.text
        endpoint_id: str = created.json()["id"]
        self.ids.add(endpoint_id)
        self.endpoints.append(endpoint_id)
        return endpoint_id

    def delete_endpoints(self) -> None:
        while self.endpoints:
            deleted = self.client.delete(f"/v1/webhook_endpoints/{self.endpoints.pop()}")
            assert deleted.status_code in (200, 404), deleted.text

    def snapshot(self, path: str) -> tuple[int, str]:
        """How the owner sees an object: compared before and after the other's attempts."""
        response = self.client.get(path)
        return response.status_code, response.text


def _payout_of(stack: RunningStack, client: httpx.Client) -> str:
    """Settle the merchant's day (every merchant's, as ``payflow settle`` does) for a payout."""
    paid = client.post("/v1/payments", json={"amount": 9_000, "currency": "usd",
                                             "payment_method": CARD})
    assert paid.status_code == 201, paid.text
    settings = stack.environment.settings
    day = datetime.now(UTC).date() + timedelta(days=settings.settlement_delay_days)
    asyncio.run(settle_day(settings.database_url, day))
    payouts = client.get("/v1/payouts").json()["data"]
    assert payouts, "settlement made no payout"
    payout_id: str = payouts[0]["id"]
    return payout_id


@pytest.fixture(scope="module")
def owner(stack: RunningStack) -> Iterator[Owner]:
    created = stack.environment.create_merchant("Owner Merchant")
    with httpx.Client(base_url=stack.base_url, timeout=20,
                      headers={"Authorization": f"Bearer {created.api_key}"}) as client:
        payout_id = _payout_of(stack, client)
        yield Owner(created.merchant_id, client, payout_id, {created.merchant_id, payout_id})


@pytest.fixture(autouse=True)
def _endpoints_deleted_after_each_test(owner: Owner) -> Iterator[None]:
    yield
    owner.delete_endpoints()


@dataclass
class Intruder:
    """The second merchant, as an API client and as a logged-in dashboard user."""

    merchant_id: str
    api_key: str
    email: str


@pytest.fixture(scope="module")
def intruder(stack: RunningStack) -> Intruder:
    created = stack.environment.create_merchant("Intruder Merchant")
    email = f"intruder-{uuid.uuid4().hex[:10]}@example.test"
    asyncio.run(ensure_user(stack.environment.settings.database_url, email, PASSWORD,
                            "merchant", created.merchant_id))
    with httpx.Client(base_url=stack.base_url, timeout=20,
                      headers={"Authorization": f"Bearer {created.api_key}"}) as client:
        own = client.post("/v1/payments", json={"amount": 700, "currency": "usd",
                                                "payment_method": CARD})
        assert own.status_code == 201, own.text  # its lists hold something of its own
    return Intruder(created.merchant_id, created.api_key, email)


CREDENTIALS = ("api key", "session cookie", "session cookie naming the owner")


@contextmanager
def intruder_client(stack: RunningStack, intruder: Intruder, credential: str,
                    owner_id: str) -> Iterator[httpx.Client]:
    """The second merchant's client. Sessions send the CSRF token, so that a refusal can only
    be about the object, and the last one also asks for the owner in ``X-Merchant-Id`` (which
    a merchant user cannot switch to)."""
    with httpx.Client(base_url=stack.base_url, timeout=20) as client:
        if credential == "api key":
            client.headers["Authorization"] = f"Bearer {intruder.api_key}"
            yield client
            return
        login = client.post("/api/auth/login",
                            json={"email": intruder.email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        assert login.json()["user"]["merchant_id"] == intruder.merchant_id
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        if credential == "session cookie naming the owner":
            client.headers["X-Merchant-Id"] = owner_id
        yield client


# --- the checks ---------------------------------------------------------------------------

def fill(path: str, object_id: str) -> str:
    start, end = path.index("{"), path.index("}")
    assert "{" not in path[end:], f"{path}: more than one path parameter"
    return path[:start] + object_id + path[end + 1:]


def never_existed(object_id: str) -> str:
    """An id of the same shape that names nothing (its random part reversed)."""
    prefix, _, random_part = object_id.rpartition("_")
    fabricated = f"{prefix}_{random_part[::-1]}"
    assert fabricated != object_id
    return fabricated


def request(client: httpx.Client, method: str, path: str,
            body: dict[str, Any] | None) -> httpx.Response:
    return client.request(method, path, json=body)


def refusal_problems(label: str, foreign: httpx.Response, unknown: httpx.Response,
                     object_id: str, unknown_id: str) -> list[str]:
    """What is wrong with the answer to another merchant's object (compared with the answer
    to an id that never existed): empty when it is the same 404."""
    problems = []
    if foreign.status_code != 404:
        problems.append(f"{label}: {foreign.status_code} {foreign.text[:200]}")
    elif foreign.request.method != "HEAD":
        error = foreign.json().get("error", {})
        if error.get("code") != "resource_missing":
            problems.append(f"{label}: 404 without resource_missing: {foreign.text[:200]}")
        if foreign.text.replace(object_id, "ID") != unknown.text.replace(unknown_id, "ID"):
            problems.append(f"{label}: answers unlike an unknown id: {foreign.text[:200]} vs "
                            f"{unknown.text[:200]}")
    if unknown.status_code != foreign.status_code:
        problems.append(f"{label}: {foreign.status_code} but {unknown.status_code} for an "
                        f"unknown id")
    return problems


@dataclass(frozen=True)
class Target:
    method: str
    path: str
    exercise: Exercise
    object_id: str

    @property
    def url(self) -> str:
        return fill(self.path, self.object_id)


def targets_for(owner: Owner, schema: dict[str, Any]) -> list[Target]:
    """One object per changing route, one shared per kind for reads, all freshly made."""
    shared_endpoint = owner.new_endpoint()
    shared: dict[Kind, str] = {"endpoint": shared_endpoint}
    targets = []
    for method, path in sorted(path_routes(schema)):
        exercise = ROUTES[(method, path)]
        if method == "GET":
            if exercise.kind not in shared:
                shared[exercise.kind] = owner.make(exercise.kind, shared_endpoint)
            object_id = shared[exercise.kind]
        else:
            object_id = owner.make(exercise.kind, shared_endpoint)
        targets.append(Target(method, path, exercise, object_id))
    return targets


SNAPSHOT_PATHS: dict[Kind, str] = {
    "captured_payment": "/v1/payments/{id}",
    "authorized_payment": "/v1/payments/{id}",
    "payout": "/v1/payouts/{id}/report.csv",
    "endpoint": "/v1/webhook_endpoints/{id}",
    "delivery": "/api/webhooks/deliveries/{id}",
}


def undocumented_method_problems(other: httpx.Client, targets: list[Target],
                                 credential: str) -> list[str]:
    """The methods a path does not document (HEAD included) answer another merchant's object
    exactly as an unknown one: 404 or 405, never anything that tells them apart."""
    documented: dict[str, set[str]] = {}
    for target in targets:
        documented.setdefault(target.path, set()).add(target.method)
    problems = []
    for target in targets:
        others = sorted(ALL_METHODS - documented.pop(target.path, ALL_METHODS))
        for method in others:
            unknown_id = never_existed(target.object_id)
            foreign = request(other, method, target.url, None)
            unknown = request(other, method, fill(target.path, unknown_id), None)
            if foreign.status_code not in (404, 405) or (
                    foreign.status_code != unknown.status_code):
                problems.append(f"{credential} {method} {target.path} (undocumented): "
                                f"{foreign.status_code}, unknown id {unknown.status_code}")
    return problems


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_another_merchant_gets_404_for_every_object_on_every_route_and_method(
    stack: RunningStack, schema: dict[str, Any], owner: Owner, intruder: Intruder,
    credential: str,
) -> None:
    """Every route with a path parameter, every documented method: the second merchant gets
    the same 404 as for an id that never existed (undocumented methods: the same 404 or 405),
    the owner's object is unchanged, and then the owner gets its answer on that very object."""
    targets = targets_for(owner, schema)
    before = {t.object_id: owner.snapshot(fill(SNAPSHOT_PATHS[t.exercise.kind], t.object_id))
              for t in targets}
    problems: list[str] = []
    with intruder_client(stack, intruder, credential, owner.merchant_id) as other:
        for target in targets:
            unknown_id = never_existed(target.object_id)
            foreign = request(other, target.method, target.url, target.exercise.body)
            unknown = request(other, target.method, fill(target.path, unknown_id),
                              target.exercise.body)
            problems += refusal_problems(f"{credential} {target.method} {target.path}",
                                         foreign, unknown, target.object_id, unknown_id)
        problems += undocumented_method_problems(other, targets, credential)
    after = {t.object_id: owner.snapshot(fill(SNAPSHOT_PATHS[t.exercise.kind], t.object_id))
             for t in targets}
    problems += [f"the owner's {object_id} changed: {before[object_id]} -> {after[object_id]}"
                 for object_id in before if before[object_id] != after[object_id]]
    for target in targets:  # last: the owner's own calls change its objects
        mine = request(owner.client, target.method, target.url, target.exercise.body)
        if mine.status_code != target.exercise.owner_status:
            problems.append(f"owner {target.method} {target.path}: {mine.status_code} "
                            f"{mine.text[:200]} (the check above proved nothing)")
    assert len(targets) == len(ROUTES)
    assert problems == [], "\n".join(problems)


def test_every_list_and_summary_shows_another_merchant_nothing_of_the_first(
    stack: RunningStack, schema: dict[str, Any], owner: Owner, intruder: Intruder,
) -> None:
    """Every GET without a path parameter (lists, balances, analytics, the dashboard's own
    endpoint), by API key and by session: no id of the first merchant appears in the answer."""
    targets_for(owner, schema)  # the owner has one of everything
    reads = sorted(path for method, path, operation in _operations(schema)
                   if method == "GET" and path not in PUBLIC_GETS
                   and not any(p["in"] == "path" for p in operation.get("parameters", [])))
    problems = []
    for credential in CREDENTIALS:
        with intruder_client(stack, intruder, credential, owner.merchant_id) as other:
            for path in reads:
                response = other.get(path)
                if response.status_code >= 500:
                    problems.append(f"{credential} GET {path}: {response.status_code}")
                leaked = sorted(i for i in owner.ids if i in response.text)
                if leaked:
                    problems.append(f"{credential} GET {path} shows {leaked}")
    assert len(reads) >= 10, reads
    assert problems == [], "\n".join(problems)


# --- ids inside queries and bodies --------------------------------------------------------

def _payment_method_is_not_shared(owner: Owner, other: httpx.Client,
                                  stack: RunningStack) -> list[str]:
    saved = owner.client.post("/v1/payment_methods", json=CARD)
    assert saved.status_code == 201, saved.text
    method_id = saved.json()["id"]
    owner.ids.add(method_id)

    def pay(client: httpx.Client, payment_method_id: str) -> httpx.Response:
        return client.post("/v1/payments", json={"amount": 1_000, "currency": "usd",
                                                 "payment_method_id": payment_method_id})

    unknown_id = never_existed(method_id)
    problems = refusal_problems("POST /v1/payments payment_method_id", pay(other, method_id),
                                pay(other, unknown_id), method_id, unknown_id)
    mine = pay(owner.client, method_id)
    if mine.status_code != 201:
        problems.append(f"the owner cannot pay with its own method: {mine.text[:200]}")
    return problems


def _customer_label_is_not_shared(owner: Owner, other: httpx.Client,
                                  stack: RunningStack) -> list[str]:
    label, email = f"cus-{uuid.uuid4().hex[:8]}", f"{uuid.uuid4().hex[:8]}@owner.test"
    device = f"device-{uuid.uuid4().hex[:8]}"

    def pay(client: httpx.Client, customer: dict[str, str]) -> httpx.Response:
        return client.post("/v1/payments", json={"amount": 1_500, "currency": "usd",
                                                 "payment_method": CARD, "customer": customer})

    mine = pay(owner.client, {"id": label, "email": email, "device_id": device})
    assert mine.status_code == 201, mine.text
    owner.ids.add(mine.json()["transaction"]["id"])
    theirs = pay(other, {"id": label, "device_id": device})
    if theirs.status_code != 201:
        return [f"POST /v1/payments customer.id: {theirs.status_code} {theirs.text[:200]}"]
    listed = other.get("/v1/payments", params={"search": label, "limit": 100})
    leaked = [text for text in (theirs.text, listed.text)
              if email in text or any(i in text for i in owner.ids)]
    return [f"POST /v1/payments customer.id shows the owner's customer: {leaked}"] if leaked else []


def _payment_cursor_is_not_shared(owner: Owner, other: httpx.Client,
                                  stack: RunningStack) -> list[str]:
    payment_id = owner.make("captured_payment", "")
    unknown_id = never_existed(payment_id)
    foreign = other.get("/v1/payments", params={"starting_after": payment_id})
    unknown = other.get("/v1/payments", params={"starting_after": unknown_id})
    if (foreign.status_code, foreign.text) != (unknown.status_code, unknown.text):
        return [f"GET /v1/payments?starting_after: {foreign.text[:200]} vs {unknown.text[:200]}"]
    return []


def _event_cursor_stays_in_own_events(owner: Owner, other: httpx.Client,
                                      stack: RunningStack) -> list[str]:
    with psycopg.connect(stack.environment.settings.database_url) as conn:
        row = conn.execute("SELECT id FROM events WHERE merchant_id = %s "
                           "ORDER BY seq DESC LIMIT 1", (owner.merchant_id,)).fetchone()
    assert row is not None, "the owner has no events yet"
    event_id = row[0]
    foreign = other.get("/v1/events", params={"starting_after": event_id, "limit": 100})
    unknown = other.get("/v1/events", params={"starting_after": never_existed(event_id),
                                              "limit": 100})
    problems = []
    if (foreign.status_code, foreign.text) != (unknown.status_code, unknown.text):
        problems.append(f"GET /v1/events?starting_after: {foreign.text[:200]} "
                        f"vs {unknown.text[:200]}")
    leaked = sorted(i for i in owner.ids if i in foreign.text)
    if leaked:
        problems.append(f"GET /v1/events?starting_after shows {leaked}")
    return problems


def _delivery_filter_is_not_shared(owner: Owner, other: httpx.Client,
                                   stack: RunningStack) -> list[str]:
    endpoint_id = owner.new_endpoint()
    delivery_id = owner.make("delivery", endpoint_id)
    unknown_id = never_existed(endpoint_id)
    foreign = other.get("/api/webhooks/deliveries", params={"endpoint_id": endpoint_id})
    unknown = other.get("/api/webhooks/deliveries", params={"endpoint_id": unknown_id})
    problems = []
    if (foreign.status_code, foreign.text) != (unknown.status_code, unknown.text):
        problems.append(f"GET /api/webhooks/deliveries?endpoint_id: {foreign.text[:200]} vs "
                        f"{unknown.text[:200]}")
    mine = owner.client.get("/api/webhooks/deliveries", params={"endpoint_id": endpoint_id})
    if delivery_id not in mine.text:
        problems.append(f"the owner's filter misses its delivery: {mine.text[:200]}")
    return problems


def _test_send_is_not_shared(owner: Owner, other: httpx.Client,
                             stack: RunningStack) -> list[str]:
    endpoint_id = owner.new_endpoint()

    def sends(client: httpx.Client, target: str) -> httpx.Response:
        return client.post("/api/webhooks/test", json={"endpoint_id": target})

    def logged() -> int:
        listed = owner.client.get("/api/webhooks/deliveries",
                                  params={"endpoint_id": endpoint_id}).json()
        total: int = listed["total"]
        return total

    unknown_id = never_existed(endpoint_id)
    problems = refusal_problems("POST /api/webhooks/test endpoint_id", sends(other, endpoint_id),
                                sends(other, unknown_id), endpoint_id, unknown_id)
    if logged() != 0:
        problems.append("another merchant's test send reached the owner's endpoint")
    if sends(owner.client, endpoint_id).status_code != 200 or logged() != 1:
        problems.append("the owner's own test send did not go out")
    return problems


ReferenceCheck = Callable[[Owner, httpx.Client, RunningStack], list[str]]
REFERENCE_CHECKS: dict[tuple[str, str, str], ReferenceCheck] = {
    ("POST", "/v1/payments", "payment_method_id"): _payment_method_is_not_shared,
    ("POST", "/v1/payments", "customer.id"): _customer_label_is_not_shared,
    ("POST", "/v1/payments", "customer.device_id"): _customer_label_is_not_shared,
    ("GET", "/v1/payments", "starting_after"): _payment_cursor_is_not_shared,
    ("GET", "/v1/events", "starting_after"): _event_cursor_stays_in_own_events,
    ("GET", "/api/webhooks/deliveries", "endpoint_id"): _delivery_filter_is_not_shared,
    ("POST", "/api/webhooks/test", "endpoint_id"): _test_send_is_not_shared,
}


@pytest.mark.parametrize("credential", CREDENTIALS)
def test_ids_in_queries_and_bodies_never_reach_another_merchants_objects(
    stack: RunningStack, owner: Owner, intruder: Intruder, credential: str,
) -> None:
    """A saved payment method, a list cursor, a delivery filter and a test send that name the
    first merchant's object act, for the second merchant, as if the object did not exist."""
    assert REFERENCE_CHECKS.keys() == REFERENCES.keys()
    problems: list[str] = []
    with intruder_client(stack, intruder, credential, owner.merchant_id) as other:
        for check in REFERENCE_CHECKS.values():
            problems += [f"{credential}: {p}" for p in check(owner, other, stack)]
    assert problems == [], "\n".join(problems)


def test_an_idempotency_key_belongs_to_one_merchant(stack: RunningStack, owner: Owner,
                                                    intruder: Intruder) -> None:
    """The same Idempotency-Key and body from another merchant makes that merchant's own
    payment: it never replays (or refuses with) the first merchant's answer."""
    key = f"shared-{uuid.uuid4().hex}"
    body = {"amount": 4_321, "currency": "usd", "payment_method": CARD}
    first = owner.client.post("/v1/payments", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    with intruder_client(stack, intruder, "api key", owner.merchant_id) as other:
        same = other.post("/v1/payments", json=body, headers={"Idempotency-Key": key})
        different = other.post("/v1/payments", json={**body, "amount": 1_234},
                               headers={"Idempotency-Key": key})
    assert same.status_code == 201, same.text
    assert different.status_code == 422, different.text  # its own key, reused with a new body
    theirs = same.json()["transaction"]
    assert theirs["id"] != first.json()["transaction"]["id"]
    assert theirs["merchant_id"] == intruder.merchant_id

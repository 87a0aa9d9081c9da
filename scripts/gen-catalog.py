#!/usr/bin/env python3
"""Generate crates/stripe-catalog/catalog.json from the typed stripe-python SDK.

The catalog lists every Stripe object the sync engine can mirror into
Postgres: its stream (table) name, list/retrieve paths, whether the list
endpoint filters on `created`, whether objects can be deleted, the webhook
event types that carry it, and a JSON-Schema-ish sketch of its top-level
fields.

Nothing is hand-typed that the SDK can tell us: stripe-python is generated
from Stripe's OpenAPI spec, so its service classes know the HTTP paths, its
TypedDict parameter classes know which list filters exist and which are
required, and its resource classes carry typed field annotations.

Usage (from anywhere; paths are relative to the repository root):

    python3 scripts/gen-catalog.py

The first stage only needs the standard library.  It creates (or reuses) a
virtualenv in target/gen-catalog-venv, installs the pinned stripe-python
into it, and re-executes this file inside it with --inside-venv, where the
introspection happens.  The output is deterministic, so re-running it on the
same SDK version gives a byte-identical file.
"""

from __future__ import annotations

import ast
import collections.abc
import dataclasses
import decimal
import importlib
import inspect
import json
import os
import subprocess
import sys
import types
import typing
import venv
from pathlib import Path

# The one place to bump the SDK.  The catalog records it, and the API version
# the SDK pins, so a diff of catalog.json shows what an upgrade changes.
STRIPE_VERSION = "16.1.0"

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_DIR = REPO_ROOT / "target" / "gen-catalog-venv"
OUTPUT = REPO_ROOT / "crates" / "stripe-catalog" / "catalog.json"
INSIDE_VENV_FLAG = "--inside-venv"


# ---------------------------------------------------------------------------
# Catalog policy: the few facts the SDK cannot tell us.
# ---------------------------------------------------------------------------

# Streams the reference system ships; we mark them so consumers can tell the
# baseline set from streams this catalog adds.
REFERENCE_STREAMS = frozenset(
    """
    accounts application_fees billing_alerts billing_credit_grants
    billing_meters billing_portal_configurations charges checkout_sessions
    climate_orders climate_products coupons credit_notes customers disputes
    early_fraud_warnings files financial_connections_accounts
    identity_verification_sessions invoice_payments invoiceitems invoices
    issuing_authorizations issuing_cardholders issuing_cards issuing_disputes
    issuing_personalization_designs issuing_transactions payment_intents
    payment_links payment_methods payouts plans prices products
    promotion_codes quotes refunds reporting_report_runs
    reporting_report_types reviews scheduled_query_runs setup_intents
    subscription_schedules subscriptions tax_ids tax_rates terminal_readers
    test_helpers_test_clocks topups transfers treasury_financial_accounts
    v2_core_accounts v2_core_event_destinations
    """.split()
)

# Stream names that do not follow the generic "object name + s" rule.
STREAM_ALIASES = {
    "radar.early_fraud_warning": "early_fraud_warnings",
    "entitlements.active_entitlement": "active_entitlements",
    "entitlements.feature": "features",
}

# v2 has many list endpoints for preview products; only these are synced.
V2_OBJECTS = frozenset({"v2.core.account", "v2.core.event_destination"})

# List parameters that do not restrict what a full sync sees.
PAGINATION_PARAMS = frozenset(
    {"limit", "starting_after", "ending_before", "created", "expand", "page"}
)

# Streams listed through a parent object.  Their list paths contain the
# parent id, or need it as a required query parameter, so they never qualify
# as top-level streams; the engine fetches them per parent (or reads the
# parent's embedded list field).
NESTED_STREAMS = [
    {
        "stream": "subscription_items",
        "list_path": "/v1/subscription_items",
        "parent": {
            "stream": "subscriptions",
            "param": "subscription",
            "embedded_field": "items",
        },
    },
    {
        "stream": "invoice_line_items",
        "list_path": "/v1/invoices/{parent}/lines",
        "parent": {"stream": "invoices", "embedded_field": "lines"},
    },
    {
        "stream": "credit_note_line_items",
        "list_path": "/v1/credit_notes/{parent}/lines",
        "parent": {"stream": "credit_notes", "embedded_field": "lines"},
    },
    {
        "stream": "checkout_session_line_items",
        "list_path": "/v1/checkout/sessions/{parent}/line_items",
        "parent": {"stream": "checkout_sessions", "embedded_field": "line_items"},
    },
]

# Event-type prefixes whose data.object is not simply "the type minus its
# last segment".  None means the object is not a stream (or is ambiguous).
EVENT_PREFIX_OBJECTS = {
    "account.application": "application",
    "account.external_account": None,  # bank_account or card
    "application_fee.refund": "fee_refund",
    "billing.alert": "billing.alert_triggered",  # not the billing.alert itself
    "charge.dispute": "dispute",
    "charge.refund": "refund",
    "customer.discount": "discount",
    "customer.source": None,
    "customer.subscription": "subscription",
    "customer.tax_id": "tax_id",
    "entitlements.active_entitlement_summary": None,
    "sigma.scheduled_query_run": "scheduled_query_run",
}

# Caveats the SDK documents in prose only; they go into the resource's note.
KNOWN_CAVEATS = {
    "tax_ids": (
        "list defaults to owner[type]=self: customer tax IDs are only seen "
        "via /v1/customers/{customer}/tax_ids or customer.tax_id.* events"
    ),
}


# ---------------------------------------------------------------------------
# Stage 1: bootstrap the virtualenv (standard library only).
# ---------------------------------------------------------------------------


def venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def installed_stripe_version(python: Path) -> str | None:
    probe = "import importlib.metadata as m; print(m.version('stripe'))"
    result = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_venv() -> Path:
    python = venv_python()
    if not python.exists():
        print(f"creating virtualenv {VENV_DIR.relative_to(REPO_ROOT)}")
        venv.create(VENV_DIR, with_pip=True, clear=VENV_DIR.exists())
    if installed_stripe_version(python) != STRIPE_VERSION:
        print(f"installing stripe=={STRIPE_VERSION}")
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", f"stripe=={STRIPE_VERSION}"],
            check=True,
        )
    return python


def bootstrap() -> None:
    python = ensure_venv()
    script = str(Path(__file__).resolve())
    os.execv(str(python), [str(python), script, INSIDE_VENV_FLAG, *sys.argv[1:]])


# ---------------------------------------------------------------------------
# Stage 2: introspection (runs inside the virtualenv).
# ---------------------------------------------------------------------------

_NAMESPACES: dict[str, dict] = {}


def typing_namespace(module_name: str) -> dict:
    """Globals of a module plus the names it imports under TYPE_CHECKING.

    stripe-python quotes most cross-module types and imports them only for
    type checkers (to avoid import cycles), so evaluating its forward
    references needs those imports replayed once the package is loaded.
    """
    if module_name in _NAMESPACES:
        return _NAMESPACES[module_name]
    module = importlib.import_module(module_name)
    namespace = dict(vars(module))
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and getattr(test, "id", None) == "TYPE_CHECKING":
            block = ast.Module(body=node.body, type_ignores=[])
            exec(compile(block, module.__file__, "exec"), namespace)
    _NAMESPACES[module_name] = namespace
    return namespace


def resolve(annotation, module_name: str, local_ns: dict | None = None):
    """Evaluate one level of forward reference (a str or typing.ForwardRef)."""
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if isinstance(annotation, str):
        return eval(annotation, typing_namespace(module_name), local_ns or {})
    return annotation


def method_hints(func) -> dict:
    """typing.get_type_hints for a method, with TYPE_CHECKING names visible."""
    return typing.get_type_hints(func, globalns=typing_namespace(func.__module__))


# --- Types -> JSON Schema ----------------------------------------------------


@dataclasses.dataclass
class Shape:
    """What a type annotation says about a JSON value."""

    types: set = dataclasses.field(default_factory=set)  # JSON type names
    enum: list | None = None
    expandable: bool = False
    format: str | None = None


class SchemaBuilder:
    """Turns stripe-python field annotations into small JSON Schema fragments.

    Keeps a record of annotations it could not classify so the summary can
    report them instead of silently emitting `{}`.
    """

    SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}

    def __init__(self):
        import stripe

        self.stripe_object = stripe.StripeObject
        self.unknown: set[str] = set()

    def field_schema(self, annotation, owner: type) -> dict:
        shape = self.describe(annotation, owner)
        schema: dict = {}
        if shape.types:
            ordered = sorted(t for t in shape.types if t != "null")
            if "null" in shape.types:
                ordered.append("null")
            schema["type"] = ordered[0] if len(ordered) == 1 else ordered
        if shape.format:
            schema["format"] = shape.format
        if shape.enum is not None:
            schema["enum"] = shape.enum + ([None] if "null" in shape.types else [])
        if shape.expandable:
            schema["x-expandable"] = True
        return schema

    def describe(self, tp, owner: type) -> Shape:
        tp = resolve(tp, owner.__module__, self.local_names(owner))
        origin = typing.get_origin(tp)
        if tp is type(None):
            return Shape({"null"})
        if tp in self.SCALARS:
            return Shape({self.SCALARS[tp]})
        if tp is decimal.Decimal:
            # The API sends *_decimal fields as strings; the SDK parses them.
            return Shape({"string"}, format="decimal")
        if origin is typing.Literal:
            values = list(typing.get_args(tp))
            return Shape({self.SCALARS[type(v)] for v in values}, values)
        if origin in (typing.Union, types.UnionType):
            return self.describe_union(typing.get_args(tp), owner)
        if origin in (list, tuple, set) or tp in (list, tuple, set):
            return Shape({"array"})
        if origin in (dict, collections.abc.Mapping) or tp is dict:
            return Shape({"object"})
        # Nested StripeObject classes, ListObject[...] and UntypedStripeObject
        # are all JSON objects on the wire.
        if self.is_stripe_object(origin or tp):
            return Shape({"object"})
        self.unknown.add(f"{owner.__qualname__}: {tp!r}")
        return Shape()

    def describe_union(self, members, owner: type) -> Shape:
        resolved = [resolve(m, owner.__module__, self.local_names(owner)) for m in members]
        non_null = [m for m in resolved if m is not type(None)]
        null = {"null"} if len(non_null) != len(resolved) else set()
        # ExpandableField[X] is Union[str, X]: an id unless expanded.
        if str in non_null and any(self.is_stripe_object(m) for m in non_null):
            return Shape({"string"} | null, expandable=True)
        literals = [m for m in non_null if typing.get_origin(m) is typing.Literal]
        # stripe-python writes enums as Union[Literal[...], str] so new values
        # do not break old SDKs; the documented values are still the enum.
        if literals and all(m is str or m in literals for m in non_null):
            values = [v for lit in literals for v in typing.get_args(lit)]
            return Shape({self.SCALARS[type(v)] for v in values} | null, values)
        if len(non_null) == 1:  # Optional[X]: keep X's format/enum details
            shape = self.describe(non_null[0], owner)
            return dataclasses.replace(shape, types=shape.types | null) if shape.types else shape
        shapes = [self.describe(m, owner) for m in non_null]
        if any(not s.types for s in shapes):
            return Shape()
        return Shape(set().union(*(s.types for s in shapes)) | null)

    def is_stripe_object(self, tp) -> bool:
        return isinstance(tp, type) and issubclass(tp, self.stripe_object)

    @staticmethod
    def local_names(owner: type) -> dict:
        # Annotations may name sibling nested classes ("Address") unqualified.
        return dict(vars(owner))

    def properties(self, cls: type) -> dict:
        # Only the class's own annotations: its bases are SDK plumbing.
        annotations = vars(cls).get("__annotations__", {})
        props = {}
        for name, annotation in annotations.items():
            if name.startswith("_") or typing.get_origin(annotation) is typing.ClassVar:
                continue
            props[name] = self.field_schema(annotation, cls)
        props.setdefault("id", {"type": "string"})
        props.setdefault("object", {"type": "string", "enum": [cls.OBJECT_NAME]})
        return dict(sorted(props.items()))


# --- Walking the StripeClient service tree ----------------------------------


class _Captured(Exception):
    """Raised by the fake transport to stop a service call after routing."""

    def __init__(self, http_method: str, url: str):
        super().__init__(http_method, url)
        self.http_method = http_method
        self.url = url


def iter_services(service_cls: type, path: str = ""):
    """Yield (dotted client path, service class) for the whole service tree.

    Every generated service module keeps its children in a module-level
    `_subservices` table that `__getattr__` imports lazily.
    """
    yield path, service_cls
    children = getattr(sys.modules[service_cls.__module__], "_subservices", {})
    for attr, (module_name, class_name) in sorted(children.items()):
        child = getattr(importlib.import_module(module_name), class_name)
        yield from iter_services(child, f"{path}.{attr}" if path else attr)


def positional_count(method) -> int:
    params = inspect.signature(method).parameters.values()
    return sum(1 for p in params if p.kind is p.POSITIONAL_ONLY)


def route(service_cls: type, method_name: str):
    """Return (HTTP method, path template) a service method would call.

    Instead of parsing source we call the method with a transport that
    records the request and aborts.  Positional ids become {parent}/{id}.
    """
    service = service_cls(None)

    def record(http_method, url, *args, **kwargs):
        raise _Captured(http_method, url)

    service._request = record
    method = getattr(service, method_name)
    # Positional arguments are path ids: all parents for `list`; for other
    # methods the last one is the object's own id.
    names = ["{parent}"] * positional_count(method)
    if names and method_name != "list":
        names[-1] = "{id}"
    # Alphanumeric markers survive the SDK's URL-quoting of ids.
    markers = [f"ZZMARKER{i}ZZ" for i in range(len(names))]
    try:
        method(*markers, params={})
    except _Captured as captured:
        url = captured.url
        for marker, name in zip(markers, names):
            url = url.replace(marker, name)
        return captured.http_method, url
    raise RuntimeError(f"{service_cls.__name__}.{method_name} made no request")


def strip_optional(tp):
    """Optional[X] -> X (params are Optional unless some are required)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if typing.get_origin(tp) is typing.Union else tp


def list_endpoints():
    """Every `list` method of the client: path, params class and item class."""
    from stripe._v1_services import V1Services
    from stripe._v2_services import V2Services

    endpoints = []
    for root_name, root in (("v1", V1Services), ("v2", V2Services)):
        for path, service_cls in iter_services(root, root_name):
            if "list" not in vars(service_cls):
                continue
            hints = method_hints(service_cls.list)
            params_cls = strip_optional(hints["params"])
            item_cls = resolve(typing.get_args(hints["return"])[0], service_cls.__module__)
            if not hasattr(item_cls, "OBJECT_NAME"):
                # Polymorphic lists (a customer's sources, an account's
                # external accounts) map to no single object or stream.
                continue
            http_method, list_path = route(service_cls, "list")
            endpoints.append(
                {
                    "client_path": path,
                    "service": service_cls,
                    "http_method": http_method,
                    "list_path": list_path,
                    "params": params_cls,
                    "item": item_cls,
                    "deprecated": "deprecated" in (service_cls.list.__doc__ or "").lower(),
                }
            )
    return endpoints


def retrieve_path(service_cls: type, list_path: str) -> str | None:
    if "retrieve" not in vars(service_cls):
        return None
    http_method, path = route(service_cls, "retrieve")
    return path if http_method == "get" and path == f"{list_path}/{{id}}" else None


def service_deletes(service_cls: type, list_path: str) -> bool:
    if "delete" not in vars(service_cls):
        return False
    return route(service_cls, "delete") == ("delete", f"{list_path}/{{id}}")


# --- Events -------------------------------------------------------------------


def webhook_event_types() -> list[str]:
    """All v1 event types: the `type` Literal of stripe.Event together with
    the `enabled_events` Literal of the webhook endpoint create params (in
    16.1.0 they are the same set; the union guards against drift)."""
    import stripe
    from stripe.params import WebhookEndpointCreateParams as params

    enabled = resolve(params.__annotations__["enabled_events"], params.__module__)
    (literal,) = typing.get_args(enabled)
    event_type = stripe.Event.__annotations__["type"]
    names = set(typing.get_args(resolve(literal, params.__module__)))
    names |= set(typing.get_args(resolve(event_type, stripe.Event.__module__)))
    return sorted(names - {"*"})


def event_object(event_type: str) -> str | None:
    """The object name carried in data.object for a v1 event type."""
    prefix = event_type.rsplit(".", 1)[0]
    if prefix in EVENT_PREFIX_OBJECTS:
        return EVENT_PREFIX_OBJECTS[prefix]
    # Issuing events use an underscore where the object name has a dot.
    if prefix.startswith("issuing_"):
        return "issuing." + prefix[len("issuing_"):]
    return prefix


def related_object_names() -> dict[str, str]:
    """v1 event type -> object name of its related object, from the typed
    thin-event classes (stripe.events.V1*Event.fetch_related_object).

    Only used to cross-check event_object(): the related object is not
    always data.object (billing.alert.triggered relates to the alert but
    carries a billing.alert_triggered), and some thin "v1.*" types are not
    v1 webhook events at all."""
    namespace = typing_namespace("stripe.events")  # its exports are lazy
    related = {}
    for name, cls in sorted(namespace.items()):
        lookup = getattr(cls, "LOOKUP_TYPE", None)
        fetch = vars(cls).get("fetch_related_object") if isinstance(cls, type) else None
        if not (name.endswith("Event") and isinstance(lookup, str) and fetch):
            continue
        if not lookup.startswith("v1."):
            continue
        target = method_hints(fetch).get("return")
        related[lookup[len("v1."):]] = getattr(target, "OBJECT_NAME", None)
    return related


# --- Assembling the catalog -------------------------------------------------


def stream_name(object_name: str) -> str:
    if object_name in STREAM_ALIASES:
        return STREAM_ALIASES[object_name]
    name = object_name.lower().replace(".", "_")
    return name if name.endswith("s") else name + "s"


def list_params(params_cls: type) -> frozenset[str]:
    return params_cls.__required_keys__ | params_cls.__optional_keys__


def required_filters(params_cls: type) -> list[str]:
    return sorted(set(params_cls.__required_keys__) - PAGINATION_PARAMS)


def build_resource(endpoint, schema: SchemaBuilder, events_by_object, **overrides) -> dict:
    item = endpoint["item"]
    object_name = item.OBJECT_NAME
    service = endpoint["service"]
    list_path = endpoint["list_path"]
    events = events_by_object.get(object_name, [])
    # A ".deleted" event counts even under another prefix: subscriptions
    # announce deletion as customer.subscription.deleted.
    deletable = (
        callable(getattr(item, "delete", None))
        or service_deletes(service, list_path)
        or any(e.endswith(".deleted") for e in events)
    )
    resource = {
        "stream": stream_name(object_name),
        "object": object_name,
        "api": "v2" if list_path.startswith("/v2/") else "v1",
        "list_path": list_path,
        "retrieve_path": retrieve_path(service, list_path),
        "created_filter": "created" in list_params(endpoint["params"]),
        "parent": None,
        "deletable": bool(deletable),
        "event_types": sorted(events),
    }
    resource.update(overrides)
    resource["in_reference_catalog"] = resource["stream"] in REFERENCE_STREAMS
    notes = []
    if resource.get("note"):
        notes.append(resource.pop("note"))
    if resource["stream"] in KNOWN_CAVEATS:
        notes.append(KNOWN_CAVEATS[resource["stream"]])
    if notes:
        resource["note"] = "; ".join(notes)
    resource["properties"] = schema.properties(item)
    return resource


def rejection(endpoint) -> str | None:
    """Why a list endpoint is not a top-level stream (None if it is one)."""
    if endpoint["http_method"] != "get":
        return f"list uses {endpoint['http_method'].upper()}"
    if "{parent}" in endpoint["list_path"]:
        return "nested under a parent path"
    if endpoint["deprecated"]:
        return "deprecated"
    required = required_filters(endpoint["params"])
    if required:
        return f"required_params: {json.dumps(required)}"
    if endpoint["list_path"].startswith("/v2/") and endpoint["item"].OBJECT_NAME not in V2_OBJECTS:
        return "v2 endpoint outside the v2 allowlist"
    return None


def build_catalog():
    import stripe
    from stripe._api_version import _ApiVersion

    schema = SchemaBuilder()
    event_types = webhook_event_types()
    events_by_object: dict[str, list[str]] = {}
    for event_type in event_types:
        obj = event_object(event_type)
        if obj is not None:
            events_by_object.setdefault(obj, []).append(event_type)

    endpoints = list_endpoints()
    by_path = {e["list_path"]: e for e in endpoints}
    resources: dict[str, dict] = {}
    rejected: dict[str, tuple[dict, str]] = {}
    warnings: list[str] = []

    for endpoint in endpoints:
        reason = rejection(endpoint)
        stream = stream_name(endpoint["item"].OBJECT_NAME)
        if reason is None:
            if stream in resources:
                warnings.append(
                    f"{stream}: second list endpoint {endpoint['list_path']} "
                    f"(client.{endpoint['client_path']}) ignored"
                )
                continue
            resources[stream] = build_resource(endpoint, schema, events_by_object)
        elif "{parent}" not in endpoint["list_path"]:
            rejected.setdefault(stream, (endpoint, reason))

    special = {}
    for stream in sorted(REFERENCE_STREAMS - resources.keys()):
        if stream not in rejected:
            warnings.append(f"reference stream {stream} has no list endpoint in stripe-python")
            continue
        endpoint, reason = rejected[stream]
        resources[stream] = build_resource(endpoint, schema, events_by_object, note=reason)
        special[stream] = reason

    for nested in NESTED_STREAMS:
        endpoint = by_path.get(nested["list_path"])
        if endpoint is None:
            warnings.append(f"nested stream {nested['stream']}: no endpoint {nested['list_path']}")
            continue
        resources[nested["stream"]] = build_resource(
            endpoint,
            schema,
            events_by_object,
            stream=nested["stream"],
            parent=nested["parent"],
            retrieve_path=None,
        )

    warnings += cross_check_events(event_types, resources)
    for unknown in sorted(schema.unknown):
        warnings.append(f"unresolved type {unknown}")

    catalog = {
        "generated_by": f"scripts/gen-catalog.py from stripe-python {stripe.VERSION}",
        "api_version": _ApiVersion.CURRENT,
        "resources": [resources[name] for name in sorted(resources)],
    }
    leftovers = {
        stream: reason
        for stream, (_, reason) in sorted(rejected.items())
        if stream not in resources
    }
    return catalog, special, leftovers, warnings


def cross_check_events(event_types, resources) -> list[str]:
    """Compare event_object() with the SDK's typed thin events."""
    streams = {r["object"] for r in resources.values()}
    known = set(event_types)
    mismatched, thin_only = [], []
    for event_type, related in sorted(related_object_names().items()):
        mapped = event_object(event_type)
        if mapped not in streams and related not in streams:
            continue
        if event_type not in known:
            thin_only.append(event_type)
        elif mapped != related:
            mismatched.append(f"{event_type} (data.object {mapped}, related {related})")
    warnings = [f"event object differs from SDK related object: {m}" for m in mismatched]
    if thin_only:
        warnings.append(
            "thin-event-only types, not v1 webhook types, left out: " + " ".join(thin_only)
        )
    return warnings


def render(catalog: dict) -> str:
    """Top level indented, one resource per line: small, reviewable diffs."""
    lines = ["{"]
    for key in ("generated_by", "api_version"):
        lines.append(f"  {json.dumps(key)}: {json.dumps(catalog[key])},")
    lines.append('  "resources": [')
    rows = [f"    {json.dumps(r)}" for r in catalog["resources"]]
    lines.append(",\n".join(rows))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate() -> None:
    catalog, special, leftovers, warnings = build_catalog()
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render(catalog))

    resources = catalog["resources"]
    nested = sum(1 for r in resources if r["parent"])
    in_reference = sum(1 for r in resources if r["in_reference_catalog"])
    print(
        f"wrote {OUTPUT.relative_to(REPO_ROOT)}: {len(resources)} resources "
        f"({nested} nested, {in_reference}/{len(REFERENCE_STREAMS)} reference streams), "
        f"api_version {catalog['api_version']}"
    )
    print("streams: " + " ".join(r["stream"] for r in resources))
    for stream, reason in sorted(special.items()):
        print(f"kept reference stream {stream} despite: {reason}")
    by_reason: dict[str, list[str]] = {}
    for stream, reason in leftovers.items():
        by_reason.setdefault(reason, []).append(stream)
    for reason, streams in sorted(by_reason.items()):
        print(f"skipped ({reason}): {' '.join(streams)}")
    for warning in warnings:
        print(f"warning: {warning}")


if __name__ == "__main__":
    if INSIDE_VENV_FLAG in sys.argv:
        generate()
    else:
        bootstrap()

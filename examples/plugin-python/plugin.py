"""Attribute matching, in Python: a user may act on a resource when they share the value of
one attribute (by default `department`). Administrators manage Portcullis; everyone may
read themselves. The same rules, reasons and settings as the Rust tutorial
(examples/plugin-tutorial, explained step by step in docs/writing-plugins.md), so the same
cases.json passes.

componentize-py turns this module into a component of the WIT world `authorizer`
(../../wit/authorizer.wit). It generates the module `wit_world` from the WIT while it
builds (run `componentize-py -d ../../wit -w authorizer bindings .` to get the files for
your editor). How the WIT reaches Python:
- the world's exports are the methods of a class named `WitWorld`, in snake_case
  (`on-event` is `on_event`); records are dataclasses with snake_case fields
  (`account-type` is `account_type`, `ttl-ms` is `ttl_ms`);
- an enum is a Python `Enum` (`AccountType.ADMIN`, `Level.INFO`);
- `option<T>` is the value or `None`;
- `tuple<string, string>` is a Python tuple;
- `result<_, string>`: returning is ok, raising `Err("text")` is the error.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports.host import Level, log
from wit_world.imports.types import (
    AccountType,
    Decision,
    Event,
    Request,
    SearchKind,
)

# The attribute to compare, from the settings (`{"attribute": "team"}`). Module state lives
# as long as the instance; `configure` runs once per instance, before anything else.
attribute = "department"


def members(text: str) -> dict:
    """Properties and context arrive as the text of one JSON object (WIT has no JSON type).
    Anything else reads as no members at all, as in the Rust tutorial."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def decision(allowed: bool, reason: str) -> Decision:
    """One decision with one reason. `ttl_ms=0` asks the host not to cache it."""
    return Decision(allowed=allowed, reasons=[reason], ttl_ms=0)


class WitWorld(wit_world.WitWorld):
    def configure(self, settings: str) -> None:
        """Called with the operator's settings: `{}` or `{"attribute": "NAME"}`.
        Raising `Err(text)` refuses the plugin with that text."""
        global attribute
        try:
            parsed = json.loads(settings)
        except ValueError as e:
            raise Err(f"settings must be a JSON object: {e}")
        if not isinstance(parsed, dict):
            raise Err(f"settings must be a JSON object, not {json.dumps(parsed)}")
        if "attribute" in parsed:
            name = parsed["attribute"]
            if not isinstance(name, str) or name == "":
                raise Err("attribute must be a non-empty string")
            attribute = name
        # The host's only import: a line in the server's log, under the target `plugin`.
        log(Level.INFO, f"plugin-python compares attribute {attribute}")

    def authorize(self, request: Request) -> Decision:
        """Decide one request. Must not raise: a failure is a deny whose reason names it."""
        # `principal` is the Portcullis user the subject names, filled in by the host (so
        # it can be trusted), or None for subjects of other types: those have no attributes.
        p = request.principal
        if p is None:
            return decision(False, f"{request.subject.type} subjects have no attributes")
        # `portcullis.origin` is set by the host: `management` when a /v1 call asks about
        # its caller, `external` when an outside application asks (/v1/authorize, AuthZEN).
        context = members(request.context)
        if context.get("portcullis.origin") != "external":
            if p.account_type == AccountType.ADMIN:
                return decision(True, "administrators manage Portcullis")
            if (
                request.action.name == "users.read"
                and request.resource.type == "user"
                and request.resource.id == p.username
            ):
                return decision(True, "everyone may read themselves")
            return decision(False, f"only administrators may {request.action.name}")
        # The user's attributes are a list of (key, value) tuples, sorted by key.
        mine = next((v for k, v in p.attributes if k == attribute), None)
        # The resource's properties may hold any JSON type; only a string can match.
        theirs = members(request.resource.properties).get(attribute)
        if not isinstance(theirs, str):
            theirs = None
        if mine is None:
            return decision(False, f"{p.username} has no {attribute} attribute")
        if theirs is None:
            return decision(False, f"the resource has no {attribute} attribute")
        if mine == theirs:
            return decision(True, f"{attribute} {mine} matches the resource's")
        return decision(False, f"{attribute} {mine} differs from the resource's {theirs}")

    def candidates(self, kind: SearchKind, of_type: str) -> list[str] | None:
        """What an AuthZEN search may return. Resources live in the application: nothing
        to enumerate, so None."""
        return None

    def on_event(self, event: Event) -> None:
        """A lifecycle event (account or user created or deleted): nothing to do.
        Returning is ok."""
        return None

#!/usr/bin/env python3
"""Check docs/policies/native.cedar against native's case table with the real Cedar engine.

Dev tool, no Rust build needed: cedarpy (Python bindings of the cedar-policy crate) decides
every case of plugins/native/cases.json, with each case mapped to a Cedar request the way
`builtin:cedar` maps it (plugins/cedar/src/lib.rs, host/plugin/src/convert.rs and
host/plugin/src/check.rs):

- the principal -> Portcullis::User::"<username>" with attributes username, account,
  account_type, attributes (a record of strings), email (when set), and parents
  Portcullis::Role::"<role>" per role and Portcullis::Account::"<account>";
- the action -> Action::"<name>";
- context: the case's, plus "portcullis.origin": "management" when it names no origin;
- the resource: in a management call `user` -> Portcullis::User, `account` ->
  Portcullis::Account, any other kind as given; its properties (target.attributes plus
  `account` when target.account is set) are its attributes, or join the principal's
  (which win) when the resource is the principal itself;
- reasons: the @id of each determining policy (sorted), or "no Cedar policy permits the
  request" on a deny no policy determined.

A case passes when its decision matches `expect` and, when it has `reason`, one reason
contains that text.

    python3 -m venv /tmp/cedarvenv && /tmp/cedarvenv/bin/pip install cedarpy
    /tmp/cedarvenv/bin/python scripts/check_cedar_native.py [--policies FILE] [--cases FILE] [-v]

Exit status 0 when every case passes, 1 otherwise.
"""

import argparse
from importlib.metadata import version
import json
import pathlib
import sys

try:
    import cedarpy
except ImportError:
    sys.exit("cedarpy is not installed: python3 -m venv /tmp/cedarvenv && "
             "/tmp/cedarvenv/bin/pip install cedarpy, then run this with /tmp/cedarvenv/bin/python")

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_DENY = "no Cedar policy permits the request"


def uid(kind, id_):
    return {"type": kind, "id": id_}


def uid_text(u):
    return '%s::%s' % (u["type"], json.dumps(u["id"]))


def request_of(case):
    """The Cedar request and entities `builtin:cedar` would build for one case."""
    p = case["principal"]
    t = case["target"]
    context = dict(case.get("context", {}))
    context.setdefault("portcullis.origin", "management")
    management = context["portcullis.origin"] == "management"

    kind = {"user": "Portcullis::User", "account": "Portcullis::Account"}.get(t["kind"]) \
        if management else None
    resource = uid(kind or t["kind"], t["id"])
    properties = dict(t.get("attributes", {}))
    if t.get("account") is not None:
        properties["account"] = t["account"]

    principal = uid("Portcullis::User", p["username"])
    attrs = {}
    is_self = resource == principal
    if is_self:
        attrs.update(properties)  # the principal's own attributes (below) win
    attrs.update({
        "username": p["username"],
        "account": p["account"],
        "account_type": p["account_type"],
        "attributes": dict(p.get("attributes", {})),
    })
    if p.get("email") is not None:
        attrs["email"] = p["email"]
    parents = [uid("Portcullis::Role", r) for r in p.get("roles", [])]
    parents.append(uid("Portcullis::Account", p["account"]))
    entities = [{"uid": principal, "attrs": attrs, "parents": parents}]
    if not is_self and properties:
        entities.append({"uid": resource, "attrs": properties, "parents": []})

    request = {
        "principal": uid_text(principal),
        "action": uid_text(uid("Action", case["action"])),
        "resource": uid_text(resource),
        "context": context,
    }
    return request, entities


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policies", default=ROOT / "docs" / "policies" / "native.cedar")
    ap.add_argument("--cases", default=ROOT / "plugins" / "native" / "cases.json")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case's reasons")
    args = ap.parse_args()

    policies = pathlib.Path(args.policies).read_text()
    # Parse once, and fail loudly on a syntax error instead of denying every case.
    try:
        policy_set = cedarpy.PolicySet.from_str(policies)
    except ValueError as e:
        sys.exit("%s: %s" % (args.policies, e))
    cases = json.loads(pathlib.Path(args.cases).read_text())["cases"]

    failed = 0
    for case in cases:
        request, entities = request_of(case)
        result = cedarpy.is_authorized(request, policy_set, entities)
        if result.decision == cedarpy.Decision.NoDecision:
            sys.exit("cedarpy could not decide (a policy or request error): %s"
                     % result.diagnostics.errors)
        ids = result.diagnostics.id_annotations_by_reason
        # builtin:cedar renames every policy after its @id, so its reasons are the ids.
        reasons = sorted(ids.get(r, r) for r in result.diagnostics.reasons)
        if not reasons and not result.allowed:
            reasons.append(DEFAULT_DENY)
        reasons += ["evaluation error: %s" % e for e in result.diagnostics.errors]

        got = "allow" if result.allowed else "deny"
        problem = None
        if got != case["expect"]:
            problem = "expected %s, got %s" % (case["expect"], got)
        elif case.get("reason") and not any(case["reason"] in r for r in reasons):
            problem = "no reason contains %r" % case["reason"]
        elif result.diagnostics.errors:
            problem = "evaluation errors"
        if problem:
            failed += 1
        print("%s  %-5s  %s%s" % ("FAIL" if problem else "pass", got, case["name"],
                                  "  -- " + problem if problem else ""))
        if problem or args.verbose:
            for r in reasons:
                print("        reason: %s" % r)

    print("%d/%d cases pass (cedarpy %s)" % (len(cases) - failed, len(cases), version("cedarpy")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

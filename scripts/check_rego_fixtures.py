#!/usr/bin/env python3
"""Check the Rego fixtures with the regorus engine (dev tool, no Rust build needed).

Two checks, each evaluating policies the way `builtin:rego` (plugins/rego/src/lib.rs) does:

- default: the conformance table tests/fixtures/rego/conformance.json. For every suite, its
  modules are added (in name order), its `data` (if any) is added, its query (default
  `data.portcullis.allow`) is tried once on the input `{}` (as `configure` does: it must
  not fail), then every case's input is set and the query evaluated. A case passes when
  `expected` is true exactly when the query's value is the boolean `true` (undefined,
  false, an error or any other value is a deny).
- `--native`: docs/policies/native.rego against native's case table
  plugins/native/cases.json. Each case becomes the input the host builds for a management
  request (host/plugin/src/convert.rs `request_to_v2`, host/plugin/src/check.rs):
    subject  {"type": "user", "id": <principal.username>, "properties": {}}
    principal the case's principal (roles and attributes default to empty)
    action   {"name": <action>, "properties": {}}
    resource {"type": <target.kind>, "id": <target.id>,
              "properties": {<target.attributes>..., "account": <target.account> if set}}
    context  the case's context plus {"portcullis.origin": "management"} when it names no
             origin.
  A case passes when allow/deny matches `expect` and, when it has `reason`, one of the
  reasons (`data.portcullis.reasons`: a string, or an array or set of strings) contains it.
- `--all`: both.
- `--fuzz N` (with `--native` or `--all`): also compare native.rego with a Python port of
  native's rules (plugins/native-rules/src/lib.rs) on N random requests, reasons included.
- `--host-context`: add the members the host adds to an AuthZEN question's context
  (`portcullis.origin`, `portcullis.decision-id`, `portcullis.policy`) to every
  conformance input; the answers must not change.

A query that is a rule path (`data.a.b`) is evaluated with `eval_rule`, any other text with
`eval_query` (its first value counts), as the plugin does.

    python3 -m venv /tmp/regovenv && /tmp/regovenv/bin/pip install gordon-to-regorus
    /tmp/regovenv/bin/python scripts/check_rego_fixtures.py [--native | --all] [--fuzz N]
        [--host-context] [-v]

PyPI has no `regorus` package (microsoft/regorus does not publish its Python bindings
there); `gordon-to-regorus` is a build of those bindings from upstream's source, unchanged
(engine: the regorus crate 0.13.0; the plugin uses 0.14.1, whose parser and built-ins are
the same), and installs the module `regorus`. A `regorus` module from any other build of
the bindings works too. Exit status 0 when every case passes, 1 otherwise.
"""

import argparse
import json
import os
import pathlib
import re
import sys

# regorus errors carry a Rust backtrace when RUST_BACKTRACE is set; keep messages short.
os.environ["RUST_BACKTRACE"] = "0"
os.environ["RUST_LIB_BACKTRACE"] = "0"

try:
    import regorus
except ImportError:
    sys.exit("the regorus module is not installed: python3 -m venv /tmp/regovenv && "
             "/tmp/regovenv/bin/pip install gordon-to-regorus, "
             "then run this with /tmp/regovenv/bin/python")

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_QUERY = "data.portcullis.allow"
DEFAULT_REASONS = "data.portcullis.reasons"
RULE_PATH = re.compile(r"^data(\.[A-Za-z0-9_]+)+$")
ENTITY_KEYS = {"type", "id", "properties"}


def engine_version():
    from importlib import metadata
    for dist in ("regorus", "gordon-to-regorus"):
        try:
            return "%s %s" % (dist, metadata.version(dist))
        except metadata.PackageNotFoundError:
            pass
    return "regorus (version unknown)"


class Failure(Exception):
    pass


class Undefined:
    def __repr__(self):
        return "undefined"


UNDEFINED = Undefined()


def evaluate(engine, query):
    """The query's value (UNDEFINED when undefined), as the plugin's `Query::eval`."""
    if RULE_PATH.match(query):
        value = engine.eval_rule(query)
        if value is None and engine.eval_rule_as_json(query) != "null":
            return UNDEFINED  # the bindings give None for both null and undefined
        return value
    results = engine.eval_query(query)
    for result in results.get("result", []):
        for expression in result.get("expressions", []):
            return expression.get("value")
    return UNDEFINED


def load_engine(modules, data):
    engine = regorus.Engine()
    for name in sorted(modules):
        try:
            engine.add_policy(name, modules[name])
        except Exception as e:  # regorus raises RuntimeError with the parser's message
            raise Failure("modules.%s: %s" % (name, e))
    if data is not None:
        if not isinstance(data, dict):
            raise Failure("data: expected a JSON object")
        engine.add_data_json(json.dumps(data))
    return engine


def configure(modules, data, query):
    """An engine ready for cases, or Failure (the plugin's `configure`)."""
    engine = load_engine(modules, data)
    engine.set_input_json("{}")
    try:
        evaluate(engine, query)
    except Exception as e:
        raise Failure("query %s: %s" % (query, e))
    return engine


def reason_texts(value):
    if value is None or value is UNDEFINED:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, set, tuple, frozenset)):
        return [t for v in value for t in reason_texts(v)]
    return [json.dumps(value)]


def decide(engine, query, reasons_query, input_):
    """(allowed, reasons, the query's value) as the plugin decides; an evaluation error
    is a deny (and its value is the Failure)."""
    engine.set_input_json(json.dumps(input_))
    try:
        verdict = evaluate(engine, query)
    except Exception as e:
        message = "query %s: %s" % (query, " ".join(str(e).split()))
        return False, [message], Failure(message)
    allowed = verdict is True
    try:
        reasons = reason_texts(evaluate(engine, reasons_query))
    except Exception as e:
        reasons = ["reasons %s: %s" % (reasons_query, str(e).strip())]
    return allowed, reasons, verdict


def check_input_shape(input_):
    """The fixture's input must be a complete AuthZEN-shaped request."""
    problems = []
    for key in ("subject", "resource"):
        entity = input_.get(key)
        if not isinstance(entity, dict) or set(entity) != ENTITY_KEYS:
            problems.append("%s must be {type, id, properties}" % key)
        elif not (isinstance(entity["type"], str) and isinstance(entity["id"], str)
                  and isinstance(entity["properties"], dict)):
            problems.append("%s: type and id must be strings, properties an object" % key)
    action = input_.get("action")
    if not isinstance(action, dict) or set(action) != {"name", "properties"} \
            or not isinstance(action.get("name"), str) \
            or not isinstance(action.get("properties"), dict):
        problems.append("action must be {name, properties}")
    if not isinstance(input_.get("context"), dict):
        problems.append("context must be an object")
    extra = set(input_) - {"subject", "action", "resource", "context", "principal"}
    if extra:
        problems.append("unknown members %s" % sorted(extra))
    if "principal" in input_:
        p = input_["principal"]
        required = {"username", "account", "account_type", "roles", "attributes"}
        if not isinstance(p, dict) or not required <= set(p) \
                or not set(p) <= required | {"email"}:
            problems.append("principal must be {username, account, account_type, roles, "
                            "attributes, email?}")
        elif p["account_type"] not in ("admin", "user", "service") \
                or not all(isinstance(r, str) for r in p["roles"]) \
                or not all(isinstance(v, str) for v in p["attributes"].values()):
            problems.append("principal: bad account_type, roles or attributes")
        elif input_["subject"].get("type") != "user" \
                or input_["subject"].get("id") != p["username"]:
            problems.append("a principal's subject is {type: user, id: <username>}")
    elif isinstance(input_.get("subject"), dict) and input_["subject"].get("type") == "user":
        # The host resolves every `user` subject to a Portcullis user (or denies it
        # without asking the plugin): a plugin never sees one without a principal.
        problems.append("a subject of type user needs a principal")
    for key in input_.get("context", {}) if isinstance(input_.get("context"), dict) else ():
        if key.startswith("portcullis."):
            problems.append("context key %s is the host's (clients' are dropped)" % key)
    return problems


# The members the host adds to an AuthZEN question's context (authz::Query::plugin_context).
HOST_CONTEXT = {"portcullis.origin": "external", "portcullis.decision-id": "d-0001",
                "portcullis.policy": "conformance"}


def run_conformance(path, verbose, host_context=False):
    table = json.loads(pathlib.Path(path).read_text())
    total = failed = 0
    names = set()
    for suite in table["suites"]:
        unknown = set(suite) - {"name", "source", "modules", "data", "query", "cases"}
        if unknown:
            print("FAIL suite %r: unknown members %s" % (suite.get("name"), sorted(unknown)))
            failed += 1
            continue
        if suite["name"] in names:
            print("FAIL suite %r: duplicate name" % suite["name"])
            failed += 1
        names.add(suite["name"])
        query = suite.get("query", DEFAULT_QUERY)
        try:
            engine = configure(suite["modules"], suite.get("data"), query)
        except Failure as e:
            print("FAIL suite %r: %s" % (suite["name"], e))
            failed += len(suite["cases"])
            total += len(suite["cases"])
            continue
        case_names = set()
        for case in suite["cases"]:
            total += 1
            label = "%s / %s" % (suite["name"], case["name"])
            problems = check_input_shape(case["input"])
            if case["name"] in case_names:
                problems.append("duplicate case name")
            case_names.add(case["name"])
            if set(case) != {"name", "input", "expected"} \
                    or not isinstance(case["expected"], bool):
                problems.append("a case is {name, input, expected: true|false}")
            input_ = case["input"]
            if host_context and isinstance(input_.get("context"), dict):
                input_ = dict(input_, context=dict(input_["context"], **HOST_CONTEXT))
            allowed, reasons, verdict = decide(engine, query, DEFAULT_REASONS, input_)
            if isinstance(verdict, Failure):
                # The plugin denies on an error too, but a table's answer must come from
                # the language's semantics, not from an error.
                problems.append("evaluation error: %s" % verdict)
            elif allowed != case.get("expected"):
                problems.append("expected %s, the query gave %s"
                                % (json.dumps(case.get("expected")), show(verdict, reasons)))
            if problems:
                failed += 1
                print("FAIL %s: %s" % (label, "; ".join(problems)))
            elif verbose:
                print("ok   %s: %s" % (label, show(verdict, reasons)))
    print("conformance (%s%s): %d suites, %d cases: %d passed, %d failed"
          % (path, ", with the host's context members" if host_context else "",
             len(table["suites"]), total, total - failed, failed))
    return failed == 0


def show(verdict, reasons):
    if isinstance(verdict, Failure):
        return "an error: %s" % verdict
    if verdict is UNDEFINED:
        return "undefined"
    if isinstance(verdict, set):
        return "the set %s" % json.dumps(sorted(verdict, key=json.dumps))
    return json.dumps(verdict)


def native_input(case):
    """The input `builtin:rego` sees for a case of a native case table."""
    p = case["principal"]
    t = case["target"]
    principal = {
        "username": p["username"],
        "account": p["account"],
        "account_type": p["account_type"],
        "roles": list(p.get("roles", [])),
        "attributes": dict(p.get("attributes", {})),
    }
    if p.get("email") is not None:
        principal["email"] = p["email"]
    properties = dict(t.get("attributes", {}))
    if t.get("account") is not None:
        properties["account"] = t["account"]  # `account` wins over an attribute
    context = dict(case.get("context", {}))
    context.setdefault("portcullis.origin", "management")
    return {
        "subject": {"type": "user", "id": p["username"], "properties": {}},
        "action": {"name": case["action"], "properties": {}},
        "resource": {"type": t["kind"], "id": t["id"], "properties": properties},
        "context": context,
        "principal": principal,
    }


def run_native(policy, cases_path, verbose):
    table = json.loads(pathlib.Path(cases_path).read_text())
    modules = {pathlib.Path(policy).name: pathlib.Path(policy).read_text()}
    try:
        engine = configure(modules, None, DEFAULT_QUERY)
    except Failure as e:
        print("FAIL %s: %s" % (policy, e))
        return False
    failed = 0
    for case in table["cases"]:
        allowed, reasons, verdict = decide(engine, DEFAULT_QUERY, DEFAULT_REASONS,
                                           native_input(case))
        want = case["expect"] == "allow"
        problems = []
        if allowed != want:
            problems.append("expected %s, got %s" % (case["expect"],
                                                      "allow" if allowed else "deny"))
        if case.get("reason") and not any(case["reason"] in r for r in reasons):
            problems.append("no reason contains %r" % case["reason"])
        if problems:
            failed += 1
            print("FAIL %s: %s (reasons %s)" % (case["name"], "; ".join(problems),
                                               json.dumps(reasons)))
        elif verbose:
            print("ok   %s: %s %s" % (case["name"], "allow" if allowed else "deny",
                                      json.dumps(reasons)))
    n = len(table["cases"])
    print("native (%s vs %s): %d cases: %d passed, %d failed"
          % (policy, cases_path, n, n - failed, failed))
    return failed == 0


# --- a Python port of plugins/native-rules/src/lib.rs, for --fuzz -------------------------

def native_glob(pattern, text):
    """`glob_match`: `*` matches any run of bytes (none included), all else itself."""
    p, t = pattern.encode(), text.encode()
    pi = ti = 0
    star, mark = None, 0
    while ti < len(t):
        if pi < len(p) and p[pi] == ord("*"):
            star, mark = pi, ti
            pi += 1
        elif pi < len(p) and p[pi] == t[ti]:
            pi += 1
            ti += 1
        elif star is not None:
            pi = star + 1
            mark += 1
            ti = mark
        else:
            return False
    while pi < len(p) and p[pi] == ord("*"):
        pi += 1
    return pi == len(p)


def native_grants(role, domain, action, kind, id_):
    parts = role.split(":", 2)
    if len(parts) < 3:
        return False
    d, a, t = parts
    domain_ok = native_glob(d, domain) if domain is not None else d == "*"
    if not domain_ok or not native_glob(a, action):
        return False
    if "/" in t:
        tk, ti = t.split("/", 1)
        if "*" not in tk:
            return tk == kind and native_glob(ti, id_)
    return native_glob(t, "%s/%s" % (kind, id_))


SELF_ACTIONS = ["users.read", "users.set-password", "keys.list", "keys.create",
                "keys.delete", "access-tokens.request", "access-tokens.revoke"]
OWN_ACCOUNT_ON_ACCOUNT = ["accounts.read", "users.list"]
OWN_ACCOUNT_ON_USER = ["users.read", "users.create", "users.update", "users.delete",
                       "users.set-password", "keys.list", "keys.create", "keys.delete"]


def native_decide(inp):
    """`decide` (with the `builtin:native` plugin's reading of the input)."""
    p = inp.get("principal")
    if p is None:
        return False, "builtin:native decides about Portcullis users only, not %s subjects" \
            % inp["subject"]["type"]
    props = inp["resource"]["properties"]
    if any(k in props and not isinstance(props[k], str) and props[k] is not None
           for k in ("account", "changes", "sso")):
        props = {}
    ta = props.get("account") if isinstance(props.get("account"), str) else None
    changes = props.get("changes") if isinstance(props.get("changes"), str) else None
    sso_linked = props.get("sso") == "linked"
    external = inp["context"].get("portcullis.origin") == "external"
    action, kind, id_ = inp["action"]["name"], inp["resource"]["type"], inp["resource"]["id"]
    user = p["username"]
    if p["account_type"] == "admin":
        return True, "account type admin may do everything"
    if p["account_type"] == "service":
        return True, "account type service may do everything"
    req = "%s:%s:%s/%s" % (ta if ta is not None else "*", action, kind, id_)
    if external:
        for role in p["roles"]:
            if native_grants(role, ta, action, kind, id_):
                return True, "role %s grants %s" % (role, req)
        return False, "no role of %s grants %s" % (user, req)
    is_self = kind == "user" and id_ == user
    if is_self and action in SELF_ACTIONS:
        return True, "%s may %s itself" % (user, action)
    if kind == "user" and not is_self and sso_linked and action != "users.read":
        return False, "%s signs in with single sign-on: only an administrator may %s it" \
            % (id_, action)
    if ta == p["account"]:
        privileged = changes is not None and any(f in ("roles", "attributes")
                                                 for f in changes.split(","))
        if privileged and action in ("users.create", "users.update"):
            return False, "account type user may not set roles or attributes (%s on %s/%s)" \
                % (action, kind, id_)
        allowed = (kind == "account" and action in OWN_ACCOUNT_ON_ACCOUNT) or \
                  (kind == "user" and action in OWN_ACCOUNT_ON_USER)
        if allowed:
            return True, "%s may %s inside its own account %s" % (user, action, p["account"])
    return False, "account type user may not %s on %s/%s" % (action, kind, id_)


def random_input(rng):
    """A random request, biased towards the corners of native's rules."""
    alphabet = ["a", "b", "c", "*", "?", "[", "]", "{", "}", ",", "\\", ".", "/", ":", "-",
                "(", ")", "|", "^", "$", "+", "é", "\u2603", " ", "\n"]

    def word(n=4):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))

    users = ["jane", "joe", "rita", word(3)]
    accounts = ["acme", "beta", "sso", word(2)]
    kinds = ["user", "account", "document", "plugin", word(2)]
    actions = SELF_ACTIONS + OWN_ACCOUNT_ON_USER + OWN_ACCOUNT_ON_ACCOUNT + \
        ["read", "write", "list", "users.link-sso", "accounts.update", word(3)]
    username = rng.choice(users)
    kind = rng.choice(kinds)
    action = rng.choice(actions)
    id_ = rng.choice(users + accounts + ["42", "7", "*", word(4)])
    account = rng.choice(accounts)
    ta_choice = rng.random()
    props = {}
    if ta_choice < 0.5:
        props["account"] = account
    elif ta_choice < 0.8:
        props["account"] = rng.choice(accounts)
    if rng.random() < 0.3:
        props["changes"] = ",".join(rng.choice(["email", "roles", "attributes", "name", ""])
                                    for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.3:
        props["sso"] = rng.choice(["linked", "unlinked"])
    if rng.random() < 0.03:
        props[rng.choice(["account", "changes", "sso"])] = rng.choice([None, 1, True, []])
    if rng.random() < 0.2:
        props[word(3) or "x"] = word(3)

    def role():
        r = rng.random()
        if r < 0.15:
            return word(6)  # anything, often malformed
        d = rng.choice([account, "*", word(3), account[:2] + "*"])
        a = rng.choice([action, "*", word(3), action[:3] + "*" if action else "*"])
        t = rng.choice(["*", kind + "/*", kind + "/" + id_, "*/" + id_, word(5),
                        kind[:1] + "*/" + id_[:1] + "*", kind + "/" + word(3)])
        return "%s:%s:%s" % (d, a, t)

    account_type = rng.choice(["user"] * 8 + ["admin", "service"])
    inp = {
        "subject": {"type": "user", "id": username, "properties": {}},
        "action": {"name": action, "properties": {}},
        "resource": {"type": kind, "id": id_, "properties": props},
        "context": {"portcullis.origin": rng.choice(["management", "external", "external"])}
        if rng.random() < 0.95 else {},
        "principal": {"username": username, "account": account, "account_type": account_type,
                      "roles": [role() for _ in range(rng.randint(0, 3))], "attributes": {}},
    }
    if rng.random() < 0.02:
        del inp["principal"]
        inp["subject"] = {"type": "service", "id": "svc", "properties": {}}
    return inp


def run_fuzz(policy, n, seed, verbose):
    import random
    rng = random.Random(seed)
    modules = {pathlib.Path(policy).name: pathlib.Path(policy).read_text()}
    engine = configure(modules, None, DEFAULT_QUERY)
    failed = 0
    for _ in range(n):
        inp = random_input(rng)
        want = native_decide(inp)
        allowed, reasons, _ = decide(engine, DEFAULT_QUERY, DEFAULT_REASONS, inp)
        if (allowed, reasons) != (want[0], [want[1]]):
            failed += 1
            if failed <= 10:
                print("FAIL fuzz: native %s, rego %s for %s"
                      % (json.dumps(want), json.dumps([allowed, reasons]), json.dumps(inp)))
        elif verbose:
            print("ok   fuzz: %s" % json.dumps(want))
    print("native fuzz (%s vs a Python port of native-rules, seed %d): %d requests: "
          "%d passed, %d failed" % (policy, seed, n, n - failed, failed))
    return failed == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--native", action="store_true",
                      help="check docs/policies/native.rego against native's case table")
    mode.add_argument("--all", action="store_true", help="both checks")
    ap.add_argument("--fixtures", default=str(ROOT / "tests/fixtures/rego/conformance.json"))
    ap.add_argument("--policy", default=str(ROOT / "docs/policies/native.rego"))
    ap.add_argument("--cases", default=str(ROOT / "plugins/native/cases.json"))
    ap.add_argument("--host-context", action="store_true",
                    help="add the members the host adds to an AuthZEN question's context "
                         "(portcullis.origin, portcullis.decision-id, portcullis.policy) to "
                         "every conformance input: the answers must not change")
    ap.add_argument("--fuzz", type=int, metavar="N", default=0,
                    help="also compare native.rego with a Python port of native's rules "
                         "on N random requests")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-v", "--verbose", action="store_true", help="print passing cases too")
    args = ap.parse_args()
    print("engine: %s" % engine_version())
    ok = True
    if not args.native:
        ok = run_conformance(args.fixtures, args.verbose, args.host_context) and ok
    if args.native or args.all:
        ok = run_native(args.policy, args.cases, args.verbose) and ok
    if args.fuzz:
        ok = run_fuzz(args.policy, args.fuzz, args.seed, args.verbose) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

# native.rego: the rules of Portcullis's native authorizer (`builtin:native`, SPEC §5.2,
# plugins/native-rules/src/lib.rs, function `decide`) written in Rego (v1 syntax, OPA 1.0)
# for `builtin:rego`. It gives the same decision as native for every request, and the
# same reason text: "account type admin may do everything", "jane may users.read itself",
# "role acme:read:* grants acme:read:document/42", "no role of jane grants ...", etc.
# It passes native's own case table, plugins/native/cases.json: every decision matches,
# and every reason a case asks for is contained in a reason of `data.portcullis.reasons`.
#
# USE
#   Check it against the case table (no server needed):
#     portcullis policies check --engine rego --policies docs/policies \
#         --cases plugins/native/cases.json
#   or from Python with the regorus engine (no Rust build; install as the script says):
#     /tmp/regovenv/bin/python scripts/check_rego_fixtures.py --native --fuzz 5000
#   (--fuzz also compares it with a Python port of native's rules on random requests).
#   Make it the management authorizer (the one deciding Portcullis's own API calls):
#   activate `builtin:rego` with the settings {"modules": {"native.rego": "<this file>"}}
#   (the query and reasons default to data.portcullis.allow and data.portcullis.reasons):
#     python3 -c 'import json; print(json.dumps({"modules": {"native.rego":
#         open("docs/policies/native.rego").read()}}))' > rego-settings.json
#     portcullis plugins check builtin:rego --settings @rego-settings.json \
#         --cases plugins/native/cases.json
#   then activate it, best in shadow mode first to compare it with the running authorizer:
#     portcullis plugins activate builtin:rego --settings @rego-settings.json --shadow
#     portcullis plugins activate builtin:rego --settings @rego-settings.json
#   (the activation's self-check needs this policy to allow the caller `plugins.activate`:
#   an admin or service account passes).
#
# THE INPUT IT READS (host/plugin/src/convert.rs `request_to_v2`)
#   input.principal   {"username", "account", "account_type": "admin"|"user"|"service",
#                      "roles": [...], "attributes": {...}, "email"?}; absent when the
#                      subject is not a Portcullis user (then: deny, as native does).
#   input.action.name the action, e.g. "users.read", or "read" for an outside question.
#   input.resource    {"type": <target kind>, "id": <target id>, "properties": {the
#                      target's attributes as strings, plus "account": <owning account>
#                      when known}}. Native reads the properties `account`, `changes`
#                      (comma-separated fields a create/update writes) and `sso`
#                      ("linked": the target user signs in with single sign-on).
#   input.context     {"portcullis.origin": "management" | "external"}.
#
# GLOBS: WHY NOT glob.match
#   Native's glob_match knows one wildcard: `*` matches any run of characters, none
#   included; every other character (`?`, `[`, `{`, `\`, `.`, `/`, `:`) matches itself.
#   Rego's glob.match differs: with delimiters `[]` it defaults to the delimiter "."
#   (glob.match("*", [], "users.read") is false), and even with `null` delimiters
#   `?`, `[...]`, `{a,b}` and `\` are special. So `glob_match` below turns the pattern
#   into an anchored regular expression in which only `*` is special (every other
#   character is escaped), which is native's semantics exactly, for any string.
#
# DIFFERENCES FROM NATIVE (none for a request the host builds)
#   - Native reads the resource properties `account`, `changes` and `sso` in one go: if
#     any of them is neither a string nor null, it ignores all three. This policy does
#     the same. (The host always sends strings, so this never happens in practice.)
#   - Native's enum has exactly three account types; here anything other than "admin"
#     or "service" is treated as "user", as the host never sends another value.
package portcullis

default allow := false

# The decision: `allowed` and the single reason native would give.
allow := decision.allowed

reasons := [decision.reason]

# Native's `decide`, one branch per early return, in its order.
decision := {
	"allowed": false,
	"reason": sprintf("builtin:native decides about Portcullis users only, not %s subjects", [input.subject.type]),
} if {
	not input.principal
} else := {
	"allowed": true,
	"reason": "account type admin may do everything",
} if {
	input.principal.account_type == "admin"
} else := {
	"allowed": true,
	"reason": "account type service may do everything",
} if {
	input.principal.account_type == "service"
} else := {
	"allowed": true,
	"reason": sprintf("role %s grants %s", [granting_roles[0], request_text]),
} if {
	external
	count(granting_roles) > 0
} else := {
	"allowed": false,
	"reason": sprintf("no role of %s grants %s", [input.principal.username, request_text]),
} if {
	external
} else := {
	"allowed": true,
	"reason": sprintf("%s may %s itself", [input.principal.username, input.action.name]),
} if {
	is_self
	input.action.name in self_actions
} else := {
	"allowed": false,
	"reason": sprintf(
		"%s signs in with single sign-on: only an administrator may %s it",
		[input.resource.id, input.action.name]
	),
} if {
	# Users who sign in with single sign-on share one account: a fellow member must not
	# mint keys for one, reset its password or delete it -- only the user or an admin.
	input.resource.type == "user"
	not is_self
	prop("sso") == "linked"
	input.action.name != "users.read"
} else := {
	"allowed": false,
	"reason": sprintf(
		"account type user may not set roles or attributes, or clear a lockout (%s on %s/%s)",
		[input.action.name, input.resource.type, input.resource.id]
	),
} if {
	# Roles and attributes carry privileges: a user account may not hand them out,
	# even inside itself.
	in_own_account
	privileged_change
	input.action.name in {"users.create", "users.update"}
} else := {
	"allowed": true,
	"reason": sprintf(
		"%s may %s inside its own account %s",
		[input.principal.username, input.action.name, input.principal.account]
	),
} if {
	in_own_account
	input.action.name in own_account_actions[input.resource.type]
} else := {
	"allowed": false,
	"reason": sprintf(
		"account type user may not %s on %s/%s",
		[input.action.name, input.resource.type, input.resource.id]
	),
}

self_actions := {
	"users.read",
	"users.set-password",
	"keys.list",
	"keys.create",
	"keys.delete",
	"access-tokens.request",
	"access-tokens.revoke",
}

own_account_actions := {
	"account": {"accounts.read", "users.list"},
	"user": {
		"users.read",
		"users.create",
		"users.update",
		"users.delete",
		"users.set-password",
		"keys.list",
		"keys.create",
		"keys.delete",
	},
}

# `portcullis.origin = external`: an outside application's question.
external if input.context["portcullis.origin"] == "external"

is_self if {
	input.resource.type == "user"
	input.resource.id == input.principal.username
}

in_own_account if target_account == input.principal.account

privileged_change if {
	some field in split(prop("changes"), ",")
	field in {"roles", "attributes", "lockout"}
}

# A resource property native reads (`account`, `changes`, `sso`): defined when it is a
# string, and none of them is defined when one of them is neither a string nor null.
prop(name) := value if {
	not malformed_properties
	value := input.resource.properties[name]
	is_string(value)
}

malformed_properties if {
	some name in ["account", "changes", "sso"]
	value := input.resource.properties[name]
	not is_string(value)
	not is_null(value)
}

# The resource's owning account, when it has one.
target_account := prop("account")

# "account:action:kind/id" as native's reasons write it ("*" for no account).
request_text := sprintf("%s:%s:%s/%s", [account_or_star, input.action.name, input.resource.type, input.resource.id])

account_or_star := a if {
	a := target_account
} else := "*"

# The user's roles that grant the request, in the order of its roles (native names the
# first).
granting_roles := [role | some role in input.principal.roles; permission_grants(role)]

# Does the permission string `domain:action:target` grant the request? The target part
# is matched against "kind/id"; a request without an account only matches the domain `*`.
permission_grants(role) if {
	parts := split(role, ":")
	count(parts) >= 3
	domain_matches(parts[0])
	glob_match(parts[1], input.action.name)
	target_matches(concat(":", array.slice(parts, 2, count(parts))))
}

domain_matches(pattern) if glob_match(pattern, target_account)

domain_matches(pattern) if {
	not has_target_account
	pattern == "*"
}

has_target_account if target_account

# A target `kind/id-glob` whose kind has no `*` names the kind exactly; any other target
# is a glob over "kind/id".
target_matches(target) if {
	pieces := split(target, "/")
	count(pieces) > 1
	not contains(pieces[0], "*")
	pieces[0] == input.resource.type
	glob_match(concat("/", array.slice(pieces, 1, count(pieces))), input.resource.id)
}

target_matches(target) if {
	not kind_and_id_glob(target)
	glob_match(target, concat("/", [input.resource.type, input.resource.id]))
}

kind_and_id_glob(target) if {
	pieces := split(target, "/")
	count(pieces) > 1
	not contains(pieces[0], "*")
}

# Native's glob: `*` matches any run of characters (none included); every other
# character matches itself.
glob_match(pattern, text) if regex.match(glob_regex(pattern), text)

glob_regex(pattern) := concat("", [
	"(?s)^",
	concat(".*", [regex_literal(part) | some part in split(pattern, "*")]),
	"$",
])

regex_literal(s) := concat("", [escape_char(c) | some c in split(s, "")])

escape_char(c) := concat("", ["\\", c]) if {
	c in regex_meta
} else := c

regex_meta := {"\\", ".", "+", "*", "?", "(", ")", "|", "[", "]", "{", "}", "^", "$"}

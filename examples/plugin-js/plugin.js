// Attribute matching, in JavaScript: a user may act on a resource when they share the
// value of one attribute (by default `department`). Administrators manage Portcullis;
// everyone may read themselves. The same rules, reasons and settings as the Rust tutorial
// (examples/plugin-tutorial, explained step by step in docs/writing-plugins.md), so the
// same cases.json passes.
//
// ComponentizeJS turns this ES module into a component of the WIT world `authorizer`
// (../../wit/authorizer.wit). How the WIT reaches JavaScript:
// - each function the world exports is an exported JS function of the same name in
//   camelCase (`on-event` is `onEvent`); record fields are camelCase too (`account-type`
//   is `accountType`, `ttl-ms` is `ttlMs`);
// - an enum value is its WIT name as a string (`"admin"`, `"info"`);
// - `option<T>` is the value or `undefined` (none);
// - `tuple<string, string>` is a two-element array;
// - `result<_, string>`: returning is ok, throwing a string is the error (err(text));
// - an imported interface is an ES module named by its WIT name, version included.

import { log } from 'portcullis:authorizer/host@0.2.0';

// The attribute to compare, from the settings (`{"attribute": "team"}`).
let attribute = 'department';

// Properties and context arrive as the text of one JSON object (WIT has no JSON type).
// Anything else reads as no members at all, as in the Rust tutorial.
function members(text) {
  try {
    const value = JSON.parse(text);
    return isObject(value) ? value : {};
  } catch {
    return {};
  }
}

// A JSON object, not an array or null.
function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// One decision with one reason. `ttlMs: 0` asks the host not to cache it.
function decision(allowed, reason) {
  return { allowed, reasons: [reason], ttlMs: 0 };
}

// Called once per instance, before anything else, with the operator's settings:
// `{}` or `{"attribute": "NAME"}`. A thrown string refuses the plugin with that text.
export function configure(settings) {
  let parsed;
  try {
    parsed = JSON.parse(settings);
  } catch (e) {
    throw `settings must be a JSON object: ${e.message}`;
  }
  if (!isObject(parsed)) {
    throw `settings must be a JSON object, not ${JSON.stringify(parsed)}`;
  }
  if (Object.hasOwn(parsed, 'attribute')) {
    const name = parsed.attribute;
    if (typeof name !== 'string' || name === '') {
      throw 'attribute must be a non-empty string';
    }
    attribute = name;
  }
  // The host's only import: a line in the server's log, under the target `plugin`.
  log('info', `plugin-js compares attribute ${attribute}`);
}

// Decide one request. Must not throw: a failure is a deny whose reason names it.
export function authorize(request) {
  // `principal` is the Portcullis user the subject names, filled in by the host (so it
  // can be trusted), or `undefined` for subjects of other types: those have no attributes.
  const principal = request.principal;
  if (principal === undefined) {
    return decision(false, `${request.subject.type} subjects have no attributes`);
  }
  // `portcullis.origin` is set by the host: `management` when a /v1 call asks about its
  // caller, `external` when an outside application asks (/v1/authorize, AuthZEN).
  const context = members(request.context);
  if (context['portcullis.origin'] !== 'external') {
    if (principal.accountType === 'admin') {
      return decision(true, 'administrators manage Portcullis');
    }
    if (
      request.action.name === 'users.read' &&
      request.resource.type === 'user' &&
      request.resource.id === principal.username
    ) {
      return decision(true, 'everyone may read themselves');
    }
    return decision(false, `only administrators may ${request.action.name}`);
  }
  // The user's attributes are a list of [key, value] pairs, sorted by key.
  const mine = principal.attributes.find(([key]) => key === attribute)?.[1];
  // The resource's properties may hold any JSON type; only a string can match.
  const value = members(request.resource.properties)[attribute];
  const theirs = typeof value === 'string' ? value : undefined;
  if (mine === undefined) {
    return decision(false, `${principal.username} has no ${attribute} attribute`);
  }
  if (theirs === undefined) {
    return decision(false, `the resource has no ${attribute} attribute`);
  }
  if (mine === theirs) {
    return decision(true, `${attribute} ${mine} matches the resource's`);
  }
  return decision(false, `${attribute} ${mine} differs from the resource's ${theirs}`);
}

// What an AuthZEN search may return. Resources live in the application: nothing to
// enumerate, so `undefined` (none).
export function candidates(kind, ofType) {
  return undefined;
}

// A lifecycle event (account or user created or deleted): nothing to do. Returning is ok.
export function onEvent(event) {}

//! Prometheus metrics of one server (a registry per server, no globals), served as text at
//! `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub outcome: String,
    pub plugin: String,
    /// The application policy (empty for the management authorizer).
    pub policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

fn latency() -> Histogram {
    // 10 µs … ~10 s
    Histogram::new(exponential_buckets(0.00001, 2.0, 20))
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub decisions: Family<DecisionLabels, Counter>,
    pub decision_latency: Histogram,
    pub plugin_failures: Family<OutcomeLabels, Counter>,
    pub cache_hits: Counter,
    pub shadow_disagreements: Counter,
    pub logins: Family<OutcomeLabels, Counter>,
    /// Key verifications by `outcome`: `memory` (no database round trip) or `store`;
    /// the two counters are taken out of the family once, not looked up per request.
    pub key_lookups_memory: Counter,
    pub key_lookups_store: Counter,
    /// Connections being served now (at most `http.max_connections`).
    pub connections: Gauge,
    /// 1 while other servers' changes are pushed to this one (PostgreSQL, listening).
    pub change_listener_up: Gauge,
    /// Change notifications received from other servers, and listener (re)connections.
    pub change_notifications: Counter,
    pub change_listener_connects: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let m = Metrics {
            http_requests: Family::default(),
            http_latency: Family::new_with_constructor(latency as fn() -> Histogram),
            decisions: Family::default(),
            decision_latency: latency(),
            plugin_failures: Family::default(),
            cache_hits: Counter::default(),
            shadow_disagreements: Counter::default(),
            logins: Family::default(),
            key_lookups_memory: Counter::default(),
            key_lookups_store: Counter::default(),
            connections: Gauge::default(),
            change_listener_up: Gauge::default(),
            change_notifications: Counter::default(),
            change_listener_connects: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            m.http_latency.clone(),
        );
        registry.register(
            "decisions",
            "Authorization decisions by outcome and plugin digest",
            m.decisions.clone(),
        );
        registry.register(
            "decision_duration_seconds",
            "Latency of decisions asked of the plugin (cache misses)",
            m.decision_latency.clone(),
        );
        registry.register(
            "plugin_failures",
            "Plugin calls that failed (timeout, trap, memory_limit, malformed, unavailable)",
            m.plugin_failures.clone(),
        );
        registry.register(
            "decision_cache_hits",
            "Decisions answered from the decision cache",
            m.cache_hits.clone(),
        );
        registry.register(
            "shadow_disagreements",
            "Decisions where the shadow plugin disagreed with the active one",
            m.shadow_disagreements.clone(),
        );
        registry.register("logins", "Login attempts by outcome", m.logins.clone());
        registry.register(
            "http_connections_open",
            "Connections being served now (bounded by http.max_connections)",
            m.connections.clone(),
        );
        registry.register(
            "change_listener_up",
            "1 while other servers' permission changes are pushed to this server (PostgreSQL LISTEN); 0 when it relies on auth.key_cache_ttl",
            m.change_listener_up.clone(),
        );
        registry.register(
            "change_notifications",
            "Permission-change notifications received from other servers",
            m.change_notifications.clone(),
        );
        registry.register(
            "change_listener_connects",
            "Times the change listener connected (the first time and after every drop)",
            m.change_listener_connects.clone(),
        );
        let key_lookups = Family::<OutcomeLabels, Counter>::default();
        // One statement each: the family's guard must be gone before the next lookup.
        let memory = key_lookups
            .get_or_create(&OutcomeLabels {
                outcome: "memory".into(),
            })
            .clone();
        let store = key_lookups
            .get_or_create(&OutcomeLabels {
                outcome: "store".into(),
            })
            .clone();
        let m = Metrics {
            key_lookups_memory: memory,
            key_lookups_store: store,
            ..m
        };
        registry.register(
            "key_lookups",
            "Key verifications by where the key record came from (memory or store)",
            key_lookups,
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    pub fn login(&self, outcome: &str) {
        self.logins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }
}

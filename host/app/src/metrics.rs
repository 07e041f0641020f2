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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyOutcomeLabels {
    /// The application policy (empty for the default, when that is the management
    /// authorizer, and for requests that were not authenticated).
    pub policy: String,
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
    /// Forward-auth checks by policy and `outcome`: `allow`, `deny`, `unauthenticated`.
    pub forward_auth: Family<PolicyOutcomeLabels, Counter>,
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
    /// The process, read from /proc at every scrape (Linux).
    process_resident_memory: Gauge,
    process_cpu_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    process_open_fds: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct VersionLabels {
    version: String,
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
            forward_auth: Family::default(),
            key_lookups_memory: Counter::default(),
            key_lookups_store: Counter::default(),
            connections: Gauge::default(),
            change_listener_up: Gauge::default(),
            change_notifications: Counter::default(),
            change_listener_connects: Counter::default(),
            process_resident_memory: Gauge::default(),
            process_cpu_seconds: Gauge::default(),
            process_open_fds: Gauge::default(),
            registry: Registry::default(),
        };
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        registry.register(
            "build_info",
            "1, labelled with the version of the running server",
            build_info,
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            m.process_resident_memory.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "CPU time the server process has used, user and system (seconds)",
            m.process_cpu_seconds.clone(),
        );
        registry.register(
            "process_open_fds",
            "File descriptors the server process has open (connections, database, logs)",
            m.process_open_fds.clone(),
        );
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
            "forward_auth",
            "Forward-auth checks (reverse proxies) by policy and outcome",
            m.forward_auth.clone(),
        );
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
        self.read_process();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The process figures, from /proc/self (left as they are where there is none).
    fn read_process(&self) {
        let page = rustix::param::page_size() as i64;
        if let Some(resident) = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|t| t.split_whitespace().nth(1)?.parse::<i64>().ok())
        {
            self.process_resident_memory.set(resident * page);
        }
        // Fields 14 and 15 of /proc/self/stat (utime, stime) in clock ticks, counted after
        // the command name, which is in parentheses and may hold spaces.
        if let Some(ticks) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|t| {
                let rest = &t[t.rfind(')')? + 2..];
                let f: Vec<&str> = rest.split_whitespace().collect();
                Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
            })
        {
            let hz = rustix::param::clock_ticks_per_second().max(1) as f64;
            self.process_cpu_seconds.set(ticks as f64 / hz);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.process_open_fds.set(fds.count() as i64);
        }
    }

    pub fn login(&self, outcome: &str) {
        self.logins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }
}

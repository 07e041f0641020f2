//! The active authorizer of this server: which plugin decides (and which one shadows it),
//! the decision cache, the decision log, the counters behind `GET /v1/authorizer`, and the
//! poller that follows the authorizer state stored in the database (so every server sharing
//! it, and `server reset-authorizer`, take effect within a second or two).

use crate::metrics::{DecisionLabels, Metrics, OutcomeLabels};
use compact_str::CompactString;
use portcullis_core::authz::{
    Decision, Origin, Query, Request, CONTEXT_DECISION_ID, CONTEXT_ORIGIN,
};
use portcullis_plugin::Plugin;
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Context keys that differ on every request and so must not split the cache.
const VOLATILE_CONTEXT: &[&str] = &[CONTEXT_DECISION_ID];
const MAX_SAMPLES: usize = 20;

/// A question an [`Authz`] answers: a management call or `/v1/authorize` ([`Request`],
/// the management authorizer) or an application policy's question ([`Query`]).
pub trait Ask: Clone + Eq + std::hash::Hash + Send + Sync + 'static {
    /// The question without what differs on every request (the decision id): the cache key.
    fn stable(&self) -> Self;
    /// Ask `plugin`.
    fn ask(&self, plugin: &Plugin) -> impl std::future::Future<Output = Decision> + Send;
    /// What the decision log and the shadow samples show of it.
    fn facts(&self) -> Facts<'_>;
    /// About how many bytes it holds (a larger question is never cached: the cache is
    /// bounded by entries, so each entry must be small).
    fn weight(&self) -> usize;
}

/// The largest question the decision cache keeps ([`Ask::weight`]).
pub const MAX_CACHED_QUESTION_BYTES: usize = 16 * 1024;

/// What the decision log shows of a question.
pub struct Facts<'a> {
    pub id: Option<&'a str>,
    pub username: &'a str,
    pub account: &'a str,
    pub action: &'a str,
    pub kind: &'a str,
    pub target: &'a str,
    pub target_account: Option<String>,
    pub origin: &'static str,
}

impl Ask for Request {
    fn stable(&self) -> Self {
        let mut request = self.clone();
        request
            .context
            .retain(|(k, _)| !VOLATILE_CONTEXT.contains(&k.as_str()));
        request
    }
    fn ask(&self, plugin: &Plugin) -> impl std::future::Future<Output = Decision> + Send {
        plugin.decide(self)
    }
    fn weight(&self) -> usize {
        let pairs =
            |v: &[(String, String)]| v.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        self.action.len()
            + self.target.kind.len()
            + self.target.id.len()
            + pairs(&self.target.attributes)
            + pairs(&self.context)
            + pairs(&self.principal.attributes)
            + self.principal.roles.iter().map(String::len).sum::<usize>()
    }
    fn facts(&self) -> Facts<'_> {
        Facts {
            id: self.context_value(CONTEXT_DECISION_ID),
            username: &self.principal.username,
            account: &self.principal.account,
            action: &self.action,
            kind: &self.target.kind,
            target: &self.target.id,
            target_account: self.target.account.clone(),
            origin: self
                .context_value(CONTEXT_ORIGIN)
                .and_then(Origin::parse)
                .map_or("", Origin::as_str),
        }
    }
}

impl Ask for Query {
    fn stable(&self) -> Self {
        Query {
            decision_id: String::new(),
            ..self.clone()
        }
    }
    fn ask(&self, plugin: &Plugin) -> impl std::future::Future<Output = Decision> + Send {
        plugin.evaluate(self)
    }
    fn weight(&self) -> usize {
        let principal = self.principal.as_ref().map_or(0, |p| {
            p.roles.iter().map(String::len).sum::<usize>()
                + p.attributes
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
        });
        self.subject.kind.len()
            + self.subject.id.len()
            + self.subject.properties.len()
            + self.action.len()
            + self.action_properties.len()
            + self.resource.kind.len()
            + self.resource.id.len()
            + self.resource.properties.len()
            + self.context.len()
            + principal
    }
    fn facts(&self) -> Facts<'_> {
        // A Portcullis user is named by username; any other subject by its type and id.
        let (username, account) = match &self.principal {
            Some(p) => (p.username.as_str(), p.account.as_str()),
            None => (self.subject.id.as_str(), self.subject.kind.as_str()),
        };
        Facts {
            id: Some(&self.decision_id)
                .filter(|id| !id.is_empty())
                .map(|s| s.as_str()),
            username,
            account,
            action: &self.action,
            kind: &self.resource.kind,
            target: &self.resource.id,
            target_account: self.resource_account(),
            origin: Origin::External.as_str(),
        }
    }
}

/// A loaded plugin and what it was activated with.
pub struct Active {
    /// A stored plugin id, or `builtin:NAME`, or a path from the config file.
    pub id: String,
    /// What people call it: the name it was uploaded with, else the id. Not unique (two
    /// uploads may share a name): logs and labels use `id`.
    pub name: String,
    pub plugin: Arc<Plugin>,
    pub settings: Value,
    pub since: i64,
    /// `id` and the plugin's digest as decision-log entries share them.
    labels: Labels,
    /// Unique per activation in this process: the decision cache is keyed by it, so the
    /// same component re-activated with other settings never serves the old answers.
    pub generation: u64,
    /// This plugin's `portcullis_decisions_total` counters by outcome, taken out of their
    /// metric family once instead of a label set built and hashed per decision.
    counters:
        std::sync::OnceLock<Vec<(&'static str, prometheus_client::metrics::counter::Counter)>>,
}

/// Every decision outcome label.
const OUTCOMES: [&str; 7] = [
    "allow",
    "deny",
    "timeout",
    "trap",
    "memory_limit",
    "malformed",
    "unavailable",
];

/// Source of [`Active::generation`].
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// The id and digest of a plugin as decision-log entries share them (one allocation per
/// plugin, not per entry).
#[derive(Clone)]
struct Labels {
    id: Arc<str>,
    digest: Arc<str>,
}

impl Active {
    /// The same, called `name` ([`Active::name`]).
    pub fn named(mut self, name: String) -> Active {
        self.name = name;
        self
    }

    pub fn new(id: String, plugin: Plugin, settings: Value, since: i64) -> Active {
        let labels = Labels {
            id: Arc::from(id.as_str()),
            digest: Arc::from(plugin.digest()),
        };
        Active {
            name: id.clone(),
            id,
            plugin: Arc::new(plugin),
            settings,
            since,
            labels,
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
            counters: std::sync::OnceLock::new(),
        }
    }

    /// The decisions counter of this plugin for `outcome`.
    fn counter(
        &self,
        metrics: &Metrics,
        policy: Option<&str>,
        outcome: &str,
    ) -> Option<&prometheus_client::metrics::counter::Counter> {
        let counters = self.counters.get_or_init(|| {
            let plugin: String = self.plugin.digest()[..12].into();
            OUTCOMES
                .iter()
                .map(|o| {
                    let labels = DecisionLabels {
                        outcome: (*o).into(),
                        plugin: plugin.clone(),
                        policy: policy.unwrap_or_default().into(),
                    };
                    (*o, metrics.decisions.get_or_create(&labels).clone())
                })
                .collect()
        });
        counters.iter().find(|(o, _)| *o == outcome).map(|(_, c)| c)
    }

    pub fn view(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "digest": self.plugin.digest(),
            "settings": self.settings,
            "since": crate::timestamp(self.since),
        })
    }
}

/// A decision id (`dec_` + 20 alphanumerics). Not a secret: drawn from the thread's RNG
/// (seeded once from the OS), so a decision costs no `getrandom` system call — the profile
/// of `POST /v1/authorize` showed 8 % of the server's CPU in it before.
pub fn decision_id() -> String {
    use rand::RngCore;
    const ALPHANUMERIC: &[u8; 62] =
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(24);
    id.push_str("dec_");
    // Two draws of 64 bits, ten base-62 digits each (62^10 < 2^64): 119 random bits, no
    // per-character sampling and no formatting machinery.
    for _ in 0..2 {
        let mut n = rng.next_u64();
        for _ in 0..10 {
            id.push(ALPHANUMERIC[(n % 62) as usize] as char);
            n /= 62;
        }
    }
    id
}

/// One entry of the decision log (`GET /v1/decisions`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Logged {
    pub seq: u64,
    pub id: String,
    pub time: String,
    pub username: String,
    pub account: String,
    pub action: String,
    pub target: String,
    pub target_account: Option<String>,
    pub origin: String,
    pub outcome: &'static str,
    pub allowed: bool,
    pub reasons: Vec<String>,
    pub plugin: String,
    pub plugin_digest: String,
    pub duration_us: u64,
    pub cached: bool,
}

/// A decision-log entry as kept in memory: short strings inline (`CompactString` holds up
/// to 24 bytes without a heap allocation), the plugin's id and digest shared, the time as
/// milliseconds. About a third of a [`Logged`]'s footprint, and a filter over the ring
/// reads names without chasing pointers (docs/benchmarks.md, scaling).
pub struct Entry {
    pub seq: u64,
    id: CompactString,
    at_ms: i64,
    pub username: CompactString,
    account: CompactString,
    pub action: CompactString,
    target: CompactString,
    target_account: Option<CompactString>,
    origin: &'static str,
    pub outcome: &'static str,
    allowed: bool,
    reasons: Box<[CompactString]>,
    plugin: Labels,
    duration_us: u64,
    cached: bool,
}

impl Entry {
    fn view(&self) -> Logged {
        Logged {
            seq: self.seq,
            id: self.id.to_string(),
            time: crate::timestamp(self.at_ms),
            username: self.username.to_string(),
            account: self.account.to_string(),
            action: self.action.to_string(),
            target: self.target.to_string(),
            target_account: self.target_account.as_ref().map(|a| a.to_string()),
            origin: self.origin.to_string(),
            outcome: self.outcome,
            allowed: self.allowed,
            reasons: self.reasons.iter().map(|r| r.to_string()).collect(),
            plugin: self.plugin.id.to_string(),
            plugin_digest: self.plugin.digest.to_string(),
            duration_us: self.duration_us,
            cached: self.cached,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Disagreement {
    pub time: String,
    pub username: String,
    pub action: String,
    pub target: String,
    pub active: &'static str,
    pub shadow: &'static str,
    pub shadow_reasons: Vec<String>,
}

#[derive(PartialEq, Eq, Hash)]
struct CacheKey<Q> {
    /// The activation that answered ([`Active::generation`]).
    generation: u64,
    request: Q,
}

#[derive(Default)]
pub struct Counts {
    pub allow: AtomicU64,
    pub deny: AtomicU64,
    pub timeout: AtomicU64,
    pub trap: AtomicU64,
    pub memory_limit: AtomicU64,
    pub malformed: AtomicU64,
    pub unavailable: AtomicU64,
    pub cache_hits: AtomicU64,
    pub shadow_agreements: AtomicU64,
    pub shadow_disagreements: AtomicU64,
}

/// The plugins answering one kind of question — the management authorizer
/// (`Authz<Request>`) or one application policy (`Authz<Query>`) — with their own cache,
/// decision log and counters.
pub struct Authz<Q = Request> {
    /// The application policy's name (`None`: the management authorizer); a label of its
    /// decision metrics.
    pub policy: Option<Arc<str>>,
    active: RwLock<Arc<Active>>,
    shadow: RwLock<Option<Arc<Active>>>,
    /// The authorizer-state version (from the database) this server runs; 0 = the config.
    pub version: AtomicI64,
    /// Held by whoever changes what this server runs (an activation here, or the state
    /// poller applying another server's): the stored version and the running plugins
    /// change together, so the poller never re-applies (or rolls back) a state an
    /// activation on this server is writing.
    pub switching: tokio::sync::Mutex<()>,
    cache: Mutex<HashMap<CacheKey<Q>, (Decision, Instant)>>,
    cache_size: usize,
    /// `authorizer.max_cache_ttl_ms`: no plugin's `ttl-ms` is honoured beyond this.
    max_ttl: Duration,
    log: Mutex<VecDeque<Entry>>,
    log_size: usize,
    seq: AtomicU64,
    pub counts: Counts,
    samples: Mutex<VecDeque<Disagreement>>,
}

impl<Q: Ask> Authz<Q> {
    pub fn new(active: Active, log_size: usize, cache_size: usize, max_ttl: Duration) -> Self {
        Authz {
            policy: None,
            active: RwLock::new(Arc::new(active)),
            shadow: RwLock::new(None),
            version: AtomicI64::new(0),
            switching: tokio::sync::Mutex::new(()),
            cache: Mutex::new(HashMap::new()),
            cache_size,
            max_ttl,
            log: Mutex::new(VecDeque::with_capacity(log_size.min(4096))),
            log_size,
            seq: AtomicU64::new(0),
            counts: Counts::default(),
            samples: Mutex::new(VecDeque::new()),
        }
    }

    pub fn active(&self) -> Arc<Active> {
        self.active.read().expect("active lock").clone()
    }

    pub fn shadow(&self) -> Option<Arc<Active>> {
        self.shadow.read().expect("shadow lock").clone()
    }

    /// Atomic swap: calls in flight keep the `Arc` they took and finish on the old plugin.
    /// Every cached decision goes with the old activation (an emergency deny rule must
    /// hold from the next request on, not after the plugin's `ttl-ms`).
    pub fn set_active(&self, a: Active) {
        *self.active.write().expect("active lock") = Arc::new(a);
        self.cache.lock().expect("cache lock").clear();
    }

    pub fn set_shadow(&self, s: Option<Active>) {
        *self.shadow.write().expect("shadow lock") = s.map(Arc::new);
        self.cache.lock().expect("cache lock").clear();
    }

    pub fn samples(&self) -> Vec<Disagreement> {
        self.samples
            .lock()
            .expect("samples lock")
            .iter()
            .cloned()
            .collect()
    }

    fn cache_key(active: &Active, request: &Q) -> CacheKey<Q> {
        CacheKey {
            generation: active.generation,
            request: request.stable(),
        }
    }

    fn cached(&self, key: &CacheKey<Q>) -> Option<Decision> {
        let mut cache = self.cache.lock().expect("cache lock");
        match cache.get(key) {
            Some((d, until)) if *until > Instant::now() => Some(d.clone()),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    fn remember(&self, key: CacheKey<Q>, d: &Decision) {
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= self.cache_size {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= self.cache_size {
                cache.clear();
            }
        }
        cache.insert(
            key,
            (
                d.clone(),
                Instant::now() + Duration::from_millis(d.ttl_ms as u64).min(self.max_ttl),
            ),
        );
    }

    /// Ask the active plugin (or the cache), count, log, and let the shadow plugin answer
    /// too (in the background; only the active answer counts).
    pub async fn evaluate(self: &Arc<Self>, request: &Q, metrics: &Metrics) -> Decision {
        let active = self.active();
        let started = Instant::now();
        // Building a key clones the request: only when the cache holds something.
        let hit = if self.cache.lock().expect("cache lock").is_empty() {
            None
        } else {
            self.cached(&Self::cache_key(&active, request))
        };
        let (decision, cached) = match hit {
            Some(d) => {
                self.counts.cache_hits.fetch_add(1, Ordering::Relaxed);
                metrics.cache_hits.inc();
                (d, true)
            }
            None => {
                let d = request.ask(&active.plugin).await;
                metrics
                    .decision_latency
                    .observe(started.elapsed().as_secs_f64());
                // Only genuine answers are cached, never a failure turned into a deny.
                if d.ttl_ms > 0
                    && d.failure.is_none()
                    && request.weight() <= MAX_CACHED_QUESTION_BYTES
                {
                    self.remember(Self::cache_key(&active, request), &d);
                }
                (d, false)
            }
        };
        let label = decision.outcome();
        let counter = match label {
            "allow" => &self.counts.allow,
            "deny" => &self.counts.deny,
            "timeout" => &self.counts.timeout,
            "memory_limit" => &self.counts.memory_limit,
            "malformed" => &self.counts.malformed,
            "unavailable" => &self.counts.unavailable,
            _ => &self.counts.trap,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = active.counter(metrics, self.policy.as_deref(), label) {
            c.inc();
        }
        if !matches!(label, "allow" | "deny") {
            metrics
                .plugin_failures
                .get_or_create(&OutcomeLabels {
                    outcome: label.into(),
                })
                .inc();
        }
        self.log(request, &decision, &active, started.elapsed(), cached);
        if let Some(shadow) = self.shadow() {
            let this = self.clone();
            let request = request.clone();
            let active_allowed = decision.allowed;
            let shadow_disagreements = metrics.shadow_disagreements.clone();
            tokio::spawn(async move {
                let s = request.ask(&shadow.plugin).await;
                if s.allowed == active_allowed {
                    this.counts
                        .shadow_agreements
                        .fetch_add(1, Ordering::Relaxed);
                    return;
                }
                this.counts
                    .shadow_disagreements
                    .fetch_add(1, Ordering::Relaxed);
                shadow_disagreements.inc();
                let facts = request.facts();
                tracing::info!(
                    policy = this.policy.as_deref(), user = %facts.username, action = %facts.action, kind = %facts.kind, id = %facts.target,
                    active = active_allowed, shadow = s.allowed, "shadow plugin disagrees"
                );
                let mut samples = this.samples.lock().expect("samples lock");
                if samples.len() >= MAX_SAMPLES {
                    samples.pop_front();
                }
                samples.push_back(Disagreement {
                    time: crate::timestamp(portcullis_store::now_ms()),
                    username: facts.username.to_string(),
                    action: facts.action.to_string(),
                    target: format!("{}/{}", facts.kind, facts.target),
                    active: if active_allowed { "allow" } else { "deny" },
                    shadow: if s.allowed { "allow" } else { "deny" },
                    shadow_reasons: s.reasons,
                });
            });
        }
        decision
    }

    fn log(&self, r: &Q, d: &Decision, active: &Active, took: Duration, cached: bool) {
        let facts = r.facts();
        let mut entry = Entry {
            seq: 0,
            id: facts
                .id
                .map_or_else(|| CompactString::from(decision_id()), CompactString::from),
            at_ms: portcullis_store::now_ms(),
            username: CompactString::from(facts.username),
            account: CompactString::from(facts.account),
            action: CompactString::from(facts.action),
            target: {
                let mut t = CompactString::with_capacity(facts.kind.len() + 1 + facts.target.len());
                t.push_str(facts.kind);
                t.push('/');
                t.push_str(facts.target);
                t
            },
            target_account: facts.target_account.map(CompactString::from),
            origin: facts.origin,
            outcome: d.outcome(),
            allowed: d.allowed,
            reasons: d
                .reasons
                .iter()
                .map(|r| CompactString::from(r.as_str()))
                .collect(),
            plugin: active.labels.clone(),
            duration_us: took.as_micros() as u64,
            cached,
        };
        let mut log = self.log.lock().expect("log lock");
        // Numbered under the lock: the ring holds consecutive sequence numbers in order.
        entry.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if log.len() >= self.log_size {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// Decision-log entries after `after` (a `seq`), oldest first, matching the filters.
    pub fn logged(&self, after: u64, limit: usize, filter: impl Fn(&Entry) -> bool) -> Vec<Logged> {
        let log = self.log.lock().expect("log lock");
        // Sequence numbers are consecutive in the ring: start right after `after` instead
        // of walking the (up to `decision_log_size`) older entries.
        let start = log
            .front()
            .map_or(0, |first| (after + 1).saturating_sub(first.seq))
            .min(log.len() as u64) as usize;
        log.range(start..)
            .filter(|e| e.seq > after && filter(e))
            .take(limit)
            .map(Entry::view)
            .collect()
    }
}

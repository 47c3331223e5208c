//! Client quotas as Kafka's ClientQuotaManager: per (user, client-id) rates of produced bytes,
//! fetched bytes and request time, each measured over `quota.window.num` samples of
//! `quota.window.size.seconds`, against the most specific quota that matches (Kafka's
//! DefaultQuotaCallback). A request that takes the rate over its quota gets the time needed to
//! bring it back ("throttle time"), which goes into the response and mutes the connection.
//!
//! The hot path asks `record` and pays one relaxed atomic load while no quota of the kind is
//! configured; with quotas, one read lock (the table) and one mutex (the sensors).

use crate::metadata::ClientQuota;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// How a quota value is typed (Kafka's QuotaConfig ConfigDef): integral ones refuse fractions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Long,
    Int,
    Double,
}

/// The quota keys valid for an entity: user and/or client-id ones, or ip ones.
pub fn key_type(ip_entity: bool, key: &str) -> Option<KeyType> {
    match (ip_entity, key) {
        (false, PRODUCER_BYTE_RATE | CONSUMER_BYTE_RATE) => Some(KeyType::Long),
        (false, REQUEST_PERCENTAGE | CONTROLLER_MUTATION_RATE) => Some(KeyType::Double),
        (true, CONNECTION_CREATION_RATE) => Some(KeyType::Int),
        _ => None,
    }
}

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Produce request bytes per second.
    Produce,
    /// Fetch response bytes per second.
    Fetch,
    /// Percent of one thread's time spent on the client's requests.
    Request,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Produce => PRODUCER_BYTE_RATE,
            Kind::Fetch => CONSUMER_BYTE_RATE,
            Kind::Request => REQUEST_PERCENTAGE,
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// The window of every rate: `samples` of `window_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub samples: usize,
    pub window_ms: i64,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    start_ms: i64,
    last_event_ms: i64,
    value: f64,
}

impl Sample {
    fn new(now: i64) -> Sample {
        Sample {
            start_ms: now,
            last_event_ms: now,
            value: 0.0,
        }
    }
}

/// Kafka's Rate over a SampledStat: the sum of the live samples over the time they span,
/// never less than `samples - 1` whole windows (so the first seconds do not read as a burst).
#[derive(Debug, Clone, Default)]
pub struct Rate {
    samples: Vec<Sample>,
    current: usize,
}

impl Rate {
    pub fn record(&mut self, w: &Window, value: f64, now: i64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now));
        }
        if now - self.samples[self.current].start_ms >= w.window_ms {
            // One spare sample overlaps the window's start, as Kafka keeps.
            self.current = (self.current + 1) % (w.samples + 1);
            if self.current >= self.samples.len() {
                self.samples.push(Sample::new(now));
            } else {
                self.samples[self.current] = Sample::new(now);
            }
        }
        let s = &mut self.samples[self.current];
        s.value += value;
        s.last_event_ms = now;
    }

    fn purge(&mut self, w: &Window, now: i64) {
        let expire = w.samples as i64 * w.window_ms;
        for s in &mut self.samples {
            if now - s.last_event_ms >= expire {
                *s = Sample::new(now);
            }
        }
    }

    /// The time the rate is measured over, in ms.
    pub fn window_size_ms(&mut self, w: &Window, now: i64) -> i64 {
        self.purge(w, now);
        let oldest = self.samples.iter().map(|s| s.start_ms).min().unwrap_or(now);
        let mut elapsed = now - oldest;
        let full = elapsed / w.window_ms;
        let min_full = w.samples as i64 - 1;
        if full < min_full {
            elapsed += (min_full - full) * w.window_ms;
        }
        elapsed.max(1)
    }

    /// Per second.
    pub fn measure(&mut self, w: &Window, now: i64) -> f64 {
        let size = self.window_size_ms(w, now);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (size as f64 / 1000.0)
    }

    /// Records `value`; the throttle time (ms) when the rate is now above `bound`: the time
    /// that brings it back to the bound with nothing more recorded (Kafka's QuotaUtils).
    pub fn record_and_throttle(&mut self, w: &Window, value: f64, bound: f64, now: i64) -> u64 {
        self.record(w, value, now);
        let rate = self.measure(w, now);
        if rate <= bound {
            return 0;
        }
        let size = self.window_size_ms(w, now) as f64;
        ((rate - bound) / bound * size).round() as u64
    }

    fn last_event_ms(&self) -> i64 {
        self.samples
            .iter()
            .map(|s| s.last_event_ms)
            .max()
            .unwrap_or(0)
    }
}

/// An entity component: absent, the default (null name) or a name.
type Part = Option<Option<String>>;

/// The user and client-id quotas in effect, and the ip ones.
#[derive(Debug, Default)]
struct Table {
    by_entity: HashMap<(Part, Part), BTreeMap<String, f64>>,
    ip: HashMap<Option<String>, f64>,
}

/// Whose rate a request counts towards: Kafka's metric tags ("" where the matched quota does
/// not name that component, so every client of a user-level quota shares one rate).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SensorKey {
    kind: Kind,
    user: String,
    client_id: String,
}

impl Table {
    /// The first quota of `kind` in Kafka's order, and the rate it is measured on:
    /// /config/users/<user>/clients/<client-id>, .../users/<user>/clients/<default>,
    /// /users/<user>, /users/<default>/clients/<client-id>, /users/<default>/clients/<default>,
    /// /users/<default>, /clients/<client-id>, /clients/<default>.
    fn resolve(&self, kind: Kind, user: &str, client_id: &str) -> Option<(SensorKey, f64)> {
        let u = || Some(Some(user.to_string()));
        let c = || Some(Some(client_id.to_string()));
        let d = || Some(None);
        let order: [((Part, Part), bool, bool); 8] = [
            ((u(), c()), true, true),
            ((u(), d()), true, true),
            ((u(), None), true, false),
            ((d(), c()), true, true),
            ((d(), d()), true, true),
            ((d(), None), true, false),
            ((None, c()), false, true),
            ((None, d()), false, true),
        ];
        order.into_iter().find_map(|(entity, by_user, by_client)| {
            let bound = *self.by_entity.get(&entity)?.get(kind.key())?;
            Some((
                SensorKey {
                    kind,
                    user: if by_user {
                        user.to_string()
                    } else {
                        String::new()
                    },
                    client_id: if by_client {
                        client_id.to_string()
                    } else {
                        String::new()
                    },
                },
                bound,
            ))
        })
    }
}

/// Sensors beyond this many get the idle ones dropped (bounded memory with many client ids).
const MAX_IDLE_SENSORS: usize = 4096;

pub struct ClientQuotas {
    window: Window,
    /// Per Kind: some entity has a quota of that kind. The hot path reads only this.
    any: [AtomicBool; 3],
    table: RwLock<Arc<Table>>,
    sensors: Mutex<HashMap<SensorKey, Rate>>,
    epoch: Instant,
    /// Serializes AlterClientQuotas' read-modify-write of the stored quotas.
    pub alter_lock: Mutex<()>,
}

impl ClientQuotas {
    pub fn new(samples: u32, window_seconds: u32, quotas: &[ClientQuota]) -> ClientQuotas {
        let q = ClientQuotas {
            window: Window {
                samples: samples.max(1) as usize,
                window_ms: window_seconds.max(1) as i64 * 1000,
            },
            any: Default::default(),
            table: RwLock::new(Arc::new(Table::default())),
            sensors: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            alter_lock: Mutex::new(()),
        };
        q.load(quotas);
        q
    }

    pub fn window(&self) -> Window {
        self.window
    }

    /// Milliseconds on the monotonic clock every rate here uses.
    pub fn now_ms(&self) -> i64 {
        self.epoch.elapsed().as_millis() as i64
    }

    /// Puts the stored quotas into effect (at start and after AlterClientQuotas).
    pub fn load(&self, quotas: &[ClientQuota]) {
        let mut table = Table::default();
        for q in quotas {
            let part = |t: &str| q.entity.get(t).cloned();
            if let Some(ip) = part(IP) {
                if let Some(v) = q.values.get(CONNECTION_CREATION_RATE) {
                    table.ip.insert(ip, *v);
                }
                continue;
            }
            table
                .by_entity
                .insert((part(USER), part(CLIENT_ID)), q.values.clone());
        }
        for kind in [Kind::Produce, Kind::Fetch, Kind::Request] {
            let any = table.by_entity.values().any(|v| v.contains_key(kind.key()));
            self.any[kind.index()].store(any, Ordering::Release);
        }
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
    }

    /// Some entity has a quota of this kind (one relaxed load).
    pub fn enabled(&self, kind: Kind) -> bool {
        self.any[kind.index()].load(Ordering::Relaxed)
    }

    fn lookup(&self, kind: Kind, user: &str, client_id: &str) -> Option<(SensorKey, f64)> {
        if !self.any[kind.index()].load(Ordering::Relaxed) {
            return None;
        }
        let table = self.table.read().unwrap_or_else(|p| p.into_inner()).clone();
        table.resolve(kind, user, client_id)
    }

    /// Records `value` (bytes, or percent-seconds of request time) for the client and answers
    /// the throttle time in ms (0: within its quota, or no quota applies).
    pub fn record(&self, kind: Kind, user: &str, client_id: &str, value: f64) -> u64 {
        let Some((key, bound)) = self.lookup(kind, user, client_id) else {
            return 0;
        };
        let now = self.now_ms();
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        if sensors.len() >= MAX_IDLE_SENSORS && !sensors.contains_key(&key) {
            let idle = self.window.samples as i64 * self.window.window_ms;
            sensors.retain(|_, r| now - r.last_event_ms() < idle);
        }
        let rate = sensors.entry(key).or_default();
        rate.record_and_throttle(&self.window, value, bound, now)
    }

    /// Takes back a recorded value (a throttled fetch answers no data, as Kafka's
    /// unrecordQuotaSensor).
    pub fn unrecord(&self, kind: Kind, user: &str, client_id: &str, value: f64) {
        let Some((key, _)) = self.lookup(kind, user, client_id) else {
            return;
        };
        let now = self.now_ms();
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rate) = sensors.get_mut(&key) {
            rate.record(&self.window, -value, now);
        }
    }

    /// The most a client may take in one go without being throttled for certain (Kafka's
    /// getMaxValueInQuotaWindow: quota x (samples - 1) x window): bounds a fetch's bytes.
    pub fn max_in_window(&self, kind: Kind, user: &str, client_id: &str) -> Option<f64> {
        let (_, bound) = self.lookup(kind, user, client_id)?;
        Some(bound * (self.window.samples as f64 - 1.0) * (self.window.window_ms as f64 / 1000.0))
    }

    /// connection_creation_rate of an ip: its own entity, else the default ip entity.
    pub fn ip_connection_rate(&self, ip: &str) -> Option<f64> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner()).clone();
        if table.ip.is_empty() {
            return None;
        }
        table
            .ip
            .get(&Some(ip.to_string()))
            .or_else(|| table.ip.get(&None))
            .copied()
    }
}

/// Percent of one thread (what request_percentage limits) for `nanos` of request time.
pub fn nanos_to_percent(nanos: u128) -> f64 {
    nanos as f64 * 100.0 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(entity: &[(&str, Option<&str>)], values: &[(&str, f64)]) -> ClientQuota {
        ClientQuota {
            entity: entity
                .iter()
                .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
                .collect(),
            values: values.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn the_most_specific_quota_wins() {
        let q = ClientQuotas::new(
            11,
            1,
            &[
                quota(&[(CLIENT_ID, None)], &[(PRODUCER_BYTE_RATE, 1.0)]),
                quota(&[(CLIENT_ID, Some("c"))], &[(PRODUCER_BYTE_RATE, 2.0)]),
                quota(&[(USER, None)], &[(PRODUCER_BYTE_RATE, 3.0)]),
                quota(
                    &[(USER, Some("alice")), (CLIENT_ID, Some("c"))],
                    &[(PRODUCER_BYTE_RATE, 4.0)],
                ),
                quota(&[(USER, Some("bob"))], &[(CONSUMER_BYTE_RATE, 5.0)]),
            ],
        );
        let bound = |u: &str, c: &str, k: Kind| {
            let t = q.table.read().unwrap().clone();
            t.resolve(k, u, c)
                .map(|(key, b)| (b, key.user, key.client_id))
        };
        assert_eq!(
            bound("alice", "c", Kind::Produce),
            Some((4.0, "alice".into(), "c".into()))
        );
        // /config/users/<default> before /config/clients/<client-id>; the rate is per user.
        assert_eq!(
            bound("alice", "d", Kind::Produce),
            Some((3.0, "alice".into(), "".into()))
        );
        assert_eq!(
            bound("bob", "c", Kind::Fetch),
            Some((5.0, "bob".into(), "".into()))
        );
        assert_eq!(bound("carol", "c", Kind::Fetch), None);
        assert_eq!(bound("carol", "c", Kind::Request), None);
        let q = ClientQuotas::new(
            11,
            1,
            &[
                quota(&[(CLIENT_ID, None)], &[(PRODUCER_BYTE_RATE, 1.0)]),
                quota(&[(CLIENT_ID, Some("c"))], &[(PRODUCER_BYTE_RATE, 2.0)]),
            ],
        );
        let t = q.table.read().unwrap().clone();
        assert_eq!(t.resolve(Kind::Produce, "u", "c").unwrap().1, 2.0);
        let (key, b) = t.resolve(Kind::Produce, "u", "x").unwrap();
        assert_eq!(
            (b, key.user.as_str(), key.client_id.as_str()),
            (1.0, "", "x")
        );
        assert!(!q.any[Kind::Fetch.index()].load(Ordering::Relaxed));
    }

    /// Kafka's arithmetic: the rate spans at least samples - 1 windows; going over the bound
    /// costs (rate - bound) / bound x window.
    #[test]
    fn throttle_time_is_kafkas() {
        let w = Window {
            samples: 11,
            window_ms: 1000,
        };
        let mut r = Rate::default();
        // 1000 B at t=0 over a 10 s minimum window: 100 B/s, exactly the bound.
        assert_eq!(r.record_and_throttle(&w, 1000.0, 100.0, 0), 0);
        // 500 B more: 150 B/s, half over: 5 s.
        assert_eq!(r.record_and_throttle(&w, 500.0, 100.0, 0), 5000);
        // After 11 s and more without events the samples are gone.
        assert_eq!(r.record_and_throttle(&w, 10.0, 100.0, 30_000), 0);
        assert!((r.measure(&w, 30_000) - 1.0).abs() < 1e-9);
        let w2 = Window {
            samples: 2,
            window_ms: 1000,
        };
        let mut r = Rate::default();
        for t in 0..5 {
            r.record(&w2, 100.0, t * 1000);
        }
        // The samples of t=3 s and t=4 s live: 200 B over the 1 s minimum, then over 1.5 s.
        assert!((r.measure(&w2, 4000) - 200.0).abs() < 1e-9);
        assert!((r.measure(&w2, 4500) - 200.0 / 1.5).abs() < 1e-9);
    }
}

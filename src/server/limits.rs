//! Connection limits as Kafka's ConnectionQuotas: max.connections (the acceptors stop
//! accepting while that many are open), max.connections.per.ip with its overrides (a
//! connection over the limit is logged and closed), max.connection.creation.rate (new
//! connections wait until the rate is back under it, at most one quota window) and the ip
//! entities' connection_creation_rate quotas (a throttled connection is closed after its delay).
//! Counted over every listener, and per listener where `listener.name.<l>.max.connections` or
//! `listener.name.<l>.max.connection.creation.rate` is set; changes apply to the next
//! connections.

use crate::config::ConnectionLimitsConfig;
use crate::security::quotas::{Rate, Window};
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// "host:count,host:count" (Kafka's parseCsvMap; a count is an int of at least 0).
pub fn parse_overrides(value: &str) -> Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((host, count)) = item.rsplit_once(':') else {
            bail!("'{item}' is not host:count");
        };
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            bail!("'{item}' has no host");
        }
        let count: i64 = match count.trim().parse::<i32>() {
            Ok(c) if c >= 0 => c as i64,
            _ => bail!("'{item}': the count must be an int of at least 0"),
        };
        out.push((host.to_string(), count));
    }
    Ok(out)
}

#[derive(Debug, Clone)]
struct Settings {
    max: usize,
    per_ip: usize,
    overrides: HashMap<IpAddr, usize>,
    creation_rate: f64,
}

impl Settings {
    /// Resolves the override hosts (names may resolve to several addresses: each gets it).
    fn from(cfg: &ConnectionLimitsConfig) -> Settings {
        let mut overrides = HashMap::new();
        for (host, count) in parse_overrides(&cfg.per_ip_overrides).unwrap_or_default() {
            let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => match (host.as_str(), 0).to_socket_addrs() {
                    Ok(a) => a.map(|a| a.ip()).collect(),
                    Err(e) => {
                        tracing::warn!(host, error = %e, "max.connections.per.ip.overrides: host does not resolve; ignored");
                        Vec::new()
                    }
                },
            };
            for ip in addrs {
                overrides.insert(ip, count as usize);
            }
        }
        Settings {
            max: cfg.max_connections.max(0) as usize,
            per_ip: cfg.max_connections_per_ip.max(0) as usize,
            overrides,
            creation_rate: cfg.max_connection_creation_rate as f64,
        }
    }
}

struct Inner {
    settings: Settings,
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// Broker-wide connection creations.
    created: Rate,
    /// Per-ip creations, for ips with a connection_creation_rate quota.
    created_by_ip: HashMap<IpAddr, Rate>,
}

pub struct ConnectionLimits {
    inner: Mutex<Inner>,
    freed: Notify,
    window: Window,
    epoch: Instant,
}

/// What happens to a connection just accepted.
pub enum Admission {
    Admitted(Slot),
    /// Over max.connections.per.ip (or its override) for the ip: close it.
    TooMany(usize),
    /// Over the ip's connection_creation_rate: close it after this delay.
    Throttled(Duration),
}

/// One listener's own max.connections and max.connection.creation.rate (static).
pub struct ListenerLimits {
    max: usize,
    creation_rate: f64,
    open: Mutex<usize>,
    created: Mutex<Rate>,
    freed: Notify,
    window: Window,
    epoch: Instant,
}

impl ListenerLimits {
    /// None when the listener sets neither.
    pub fn new(
        max: Option<i64>,
        creation_rate: Option<i64>,
        window: Window,
    ) -> Option<Arc<ListenerLimits>> {
        if max.is_none() && creation_rate.is_none() {
            return None;
        }
        Some(Arc::new(ListenerLimits {
            max: max.unwrap_or(i32::MAX as i64).max(0) as usize,
            creation_rate: creation_rate.unwrap_or(i32::MAX as i64) as f64,
            open: Mutex::new(0),
            created: Mutex::new(Rate::default()),
            freed: Notify::new(),
            window,
            epoch: Instant::now(),
        }))
    }

    fn open(&self) -> std::sync::MutexGuard<'_, usize> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn wait_for_slot(&self) {
        loop {
            let freed = self.freed.notified();
            if *self.open() < self.max {
                return;
            }
            freed.await;
        }
    }

    pub fn creation_delay(&self) -> Duration {
        if self.creation_rate >= i32::MAX as f64 {
            return Duration::ZERO;
        }
        let now = self.epoch.elapsed().as_millis() as i64;
        let mut rate = self.created.lock().unwrap_or_else(|p| p.into_inner());
        let ms = rate.record_and_throttle(
            &self.window,
            1.0,
            self.creation_rate.max(f64::MIN_POSITIVE),
            now,
        );
        Duration::from_millis(ms.min(self.window.window_ms as u64))
    }
}

/// A counted connection; dropping it frees its place.
pub struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
    listener: Option<Arc<ListenerLimits>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(l) = &self.listener {
            let mut open = l.open();
            *open = open.saturating_sub(1);
            drop(open);
            l.freed.notify_waiters();
        }
        let mut inner = self.limits.lock();
        inner.total = inner.total.saturating_sub(1);
        if let Some(n) = inner.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                inner.per_ip.remove(&self.ip);
            }
        }
        drop(inner);
        self.limits.freed.notify_waiters();
    }
}

impl ConnectionLimits {
    pub fn new(cfg: &ConnectionLimitsConfig, window: Window) -> ConnectionLimits {
        ConnectionLimits {
            inner: Mutex::new(Inner {
                settings: Settings::from(cfg),
                total: 0,
                per_ip: HashMap::new(),
                created: Rate::default(),
                created_by_ip: HashMap::new(),
            }),
            freed: Notify::new(),
            window,
            epoch: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> i64 {
        self.epoch.elapsed().as_millis() as i64
    }

    /// New settings (dynamic broker configs); waiting acceptors re-check.
    pub fn reconfigure(&self, cfg: &ConnectionLimitsConfig) {
        let settings = Settings::from(cfg);
        tracing::info!(
            max_connections = settings.max,
            max_connections_per_ip = settings.per_ip,
            overrides = settings.overrides.len(),
            max_connection_creation_rate = settings.creation_rate,
            "connection limits updated"
        );
        self.lock().settings = settings;
        self.freed.notify_waiters();
    }

    /// Open connections (tests, metrics).
    pub fn open(&self) -> usize {
        self.lock().total
    }

    /// Waits while max.connections are open (Kafka's acceptor blocks the same way).
    pub async fn wait_for_slot(&self) {
        loop {
            let freed = self.freed.notified();
            {
                let inner = self.lock();
                if inner.total < inner.settings.max {
                    return;
                }
            }
            freed.await;
        }
    }

    /// Records a connection creation and answers how long to wait before serving it
    /// (max.connection.creation.rate; Kafka caps the wait at one quota window).
    pub fn creation_delay(&self) -> Duration {
        let now = self.now_ms();
        let mut inner = self.lock();
        let bound = inner.settings.creation_rate;
        if bound >= i32::MAX as f64 {
            return Duration::ZERO;
        }
        let ms =
            inner
                .created
                .record_and_throttle(&self.window, 1.0, bound.max(f64::MIN_POSITIVE), now);
        Duration::from_millis(ms.min(self.window.window_ms as u64))
    }

    /// Counts a connection from `ip`, unless it is over its ip's limits. `ip_rate` is the ip's
    /// connection_creation_rate quota, if any.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        ip_rate: Option<f64>,
        listener: Option<&Arc<ListenerLimits>>,
    ) -> Admission {
        let now = self.now_ms();
        let mut inner = self.lock();
        if let Some(bound) = ip_rate {
            let window = self.window;
            let rate = inner.created_by_ip.entry(ip).or_default();
            let ms = rate.record_and_throttle(&window, 1.0, bound, now);
            if ms > 0 {
                // Not accepted: it does not count towards the rate.
                rate.record(&window, -1.0, now);
                return Admission::Throttled(Duration::from_millis(
                    ms.min(window.window_ms as u64),
                ));
            }
        }
        let max = inner
            .settings
            .overrides
            .get(&ip)
            .copied()
            .unwrap_or(inner.settings.per_ip);
        let count = inner.per_ip.get(&ip).copied().unwrap_or(0);
        if count >= max {
            return Admission::TooMany(max);
        }
        inner.per_ip.insert(ip, count + 1);
        inner.total += 1;
        if inner.created_by_ip.len() > 4096 {
            // Bounded memory: forget the ips with nothing left in their window.
            let window = self.window;
            inner
                .created_by_ip
                .retain(|_, r| r.measure(&window, now) > 0.0);
        }
        if let Some(l) = listener {
            *l.open() += 1;
        }
        Admission::Admitted(Slot {
            limits: self.clone(),
            ip,
            listener: listener.cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: i64, per_ip: i64, overrides: &str) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits::new(
            &ConnectionLimitsConfig {
                max_connections: max,
                max_connections_per_ip: per_ip,
                per_ip_overrides: overrides.to_string(),
                max_connection_creation_rate: i32::MAX as i64,
            },
            Window {
                samples: 11,
                window_ms: 1000,
            },
        ))
    }

    #[test]
    fn per_ip_limits_and_overrides() {
        let l = limits(100, 2, "10.0.0.1:0,localhost:3");
        let a: IpAddr = "10.0.0.2".parse().unwrap();
        let one = l.admit(a, None, None);
        let two = l.admit(a, None, None);
        assert!(matches!(one, Admission::Admitted(_)));
        assert!(matches!(two, Admission::Admitted(_)));
        assert!(matches!(l.admit(a, None, None), Admission::TooMany(2)));
        drop(one);
        assert!(matches!(l.admit(a, None, None), Admission::Admitted(_)));
        assert!(matches!(
            l.admit("10.0.0.1".parse().unwrap(), None, None),
            Admission::TooMany(0)
        ));
        let local: Vec<Admission> = (0..3)
            .map(|_| l.admit("127.0.0.1".parse().unwrap(), None, None))
            .collect();
        assert!(local.iter().all(|a| matches!(a, Admission::Admitted(_))));
        assert_eq!(l.open(), 4);
        assert!(parse_overrides("a:1,b").is_err());
        assert!(parse_overrides("a:-1").is_err());
        assert_eq!(parse_overrides(" a:1 , [::1]:2").unwrap().len(), 2);
    }

    #[test]
    fn an_ip_over_its_creation_rate_is_throttled() {
        let l = limits(100, 100, "");
        let ip: IpAddr = "10.0.0.3".parse().unwrap();
        // 1 per second over a 10 s minimum window: 10 connections at once are within it.
        let admitted: Vec<Admission> = (0..10).map(|_| l.admit(ip, Some(1.0), None)).collect();
        assert!(admitted.iter().all(|a| matches!(a, Admission::Admitted(_))));
        assert!(matches!(
            l.admit(ip, Some(1.0), None),
            Admission::Throttled(_)
        ));
    }
}

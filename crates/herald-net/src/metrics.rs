//! Operational metrics (Prometheus/OpenMetrics text, via `prometheus-client`) and the
//! rate-limited logging of refusals: a flood must show up as numbers, not as a log flood.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

type Labels = Vec<(&'static str, &'static str)>;

pub struct Metrics {
    registry: Registry,
    pub connections_accepted: Counter,
    /// Connections refused at accept, by reason.
    pub connections_refused: Family<Labels, Counter>,
    /// Established connections closed with -429 for exceeding a limit, by reason.
    pub limit_closes: Family<Labels, Counter>,
    pub connections_open: Gauge,
    pub key_exchanges: Counter,
    pub partial_frame_timeouts: Counter,
    pub sessions: Gauge,
    pub buffered_bytes: Gauge,
    pub rpc_requests: Counter,
    pub rpc_errors: Counter,
    /// Requests refused because their container's answers were already too large.
    pub answers_over_budget: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("herald");
        let m = Self {
            connections_accepted: Counter::default(),
            connections_refused: Family::default(),
            limit_closes: Family::default(),
            connections_open: Gauge::default(),
            key_exchanges: Counter::default(),
            partial_frame_timeouts: Counter::default(),
            sessions: Gauge::default(),
            buffered_bytes: Gauge::default(),
            rpc_requests: Counter::default(),
            rpc_errors: Counter::default(),
            answers_over_budget: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("connections_accepted", "Connections accepted", m.connections_accepted.clone());
        registry.register("connections_refused", "Connections refused at accept, by reason", m.connections_refused.clone());
        registry.register("limit_closes", "Connections closed with -429 for exceeding a limit, by reason", m.limit_closes.clone());
        registry.register("connections_open", "Open client connections", m.connections_open.clone());
        registry.register("key_exchanges", "Completed key exchanges", m.key_exchanges.clone());
        registry.register("partial_frame_timeouts", "Connections closed for not completing a frame in time", m.partial_frame_timeouts.clone());
        registry.register("sessions", "Encrypted sessions held", m.sessions.clone());
        registry.register("buffered_bytes", "Bytes held in partial frames", m.buffered_bytes.clone());
        registry.register("rpc_requests", "API requests answered", m.rpc_requests.clone());
        registry.register("rpc_errors", "API requests answered with an rpc_error", m.rpc_errors.clone());
        registry.register("answers_over_budget", "Requests refused because their message's answers were too large", m.answers_over_budget.clone());
        Self { registry, ..m }
    }
}

impl Metrics {
    pub fn refused(&self, reason: &'static str) {
        self.connections_refused.get_or_create(&vec![("reason", reason)]).inc();
    }

    pub fn limit_close(&self, reason: &'static str) {
        self.limit_closes.get_or_create(&vec![("reason", reason)]).inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Lets one log line through per `every`, saying how many were held back in between.
pub struct LogLimiter {
    every: Duration,
    last: Mutex<Option<Instant>>,
    held: AtomicU64,
}

impl LogLimiter {
    pub const fn new(every: Duration) -> Self {
        Self { every, last: Mutex::new(None), held: AtomicU64::new(0) }
    }

    /// Some(number held back since the last line) when this one should be logged.
    pub fn allow(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap();
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < self.every) {
            self.held.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.held.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_reason_and_rendered() {
        let m = Metrics::default();
        m.refused("connections_per_address");
        m.refused("connections_per_address");
        m.limit_close("key_exchange_rate");
        let text = m.render();
        assert!(text.contains(r#"herald_connections_refused_total{reason="connections_per_address"} 2"#), "{text}");
        assert!(text.contains(r#"herald_limit_closes_total{reason="key_exchange_rate"} 1"#), "{text}");
    }

    #[test]
    fn the_log_limiter_holds_back_and_counts() {
        let l = LogLimiter::new(Duration::from_secs(3600));
        assert_eq!(l.allow(), Some(0));
        assert_eq!(l.allow(), None);
        assert_eq!(l.allow(), None);
        assert_eq!(l.held.load(Ordering::Relaxed), 2);
    }
}

//! `/healthz` and `/metrics` over HTTP, served by one thread of its own: a slow or stuck
//! scraper never touches capture, inference or the ordering stage.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::Metrics;
use crate::status::{now_ms, ScenarioStatus};

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen on {addr} for /healthz and /metrics: {message}; pick a free address \
     ([service] listen or --listen), or stop what holds it"
)]
pub struct BindError {
    pub addr: SocketAddr,
    pub message: String,
}

/// A bound endpoint, not yet serving: binding happens before any scenario starts, so a
/// port in use is reported up front.
pub struct Endpoint {
    server: tiny_http::Server,
    addr: SocketAddr,
}

impl Endpoint {
    pub fn bind(addr: SocketAddr) -> Result<Endpoint, BindError> {
        let server = tiny_http::Server::http(addr).map_err(|e| BindError {
            addr,
            message: e.to_string(),
        })?;
        // Port 0 asks for a free port: report the one given.
        let addr = server.server_addr().to_ip().unwrap_or(addr);
        Ok(Endpoint { server, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers requests until `done` is set (checked every 200 ms).
    pub fn serve(&self, metrics: &Metrics, statuses: &[Arc<ScenarioStatus>], done: &AtomicBool) {
        while !done.load(Ordering::SeqCst) {
            let request = match self.server.recv_timeout(Duration::from_millis(200)) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!("health/metrics endpoint stopped: {e}");
                    return;
                }
            };
            let (code, kind, body) = answer(request.url(), metrics, statuses);
            let mut response = tiny_http::Response::from_string(body).with_status_code(code);
            if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes()) {
                response = response.with_header(h);
            }
            // A client that went away is its own problem, not the line's.
            if let Err(e) = request.respond(response) {
                tracing::debug!("health/metrics client: {e}");
            }
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";

fn answer(
    url: &str,
    metrics: &Metrics,
    statuses: &[Arc<ScenarioStatus>],
) -> (u16, &'static str, String) {
    let path = url.split('?').next().unwrap_or(url);
    match path {
        "/metrics" => match metrics.render() {
            Ok(text) => (
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            Err(e) => (500, TEXT, format!("cannot encode metrics: {e}\n")),
        },
        "/healthz" => {
            let health = Health::of(statuses);
            let code = if health.healthy { 200 } else { 503 };
            match serde_json::to_string_pretty(&health) {
                Ok(json) => (code, "application/json", json + "\n"),
                Err(e) => (500, TEXT, format!("cannot encode health: {e}\n")),
            }
        }
        _ => (404, TEXT, "not found; try /healthz or /metrics\n".into()),
    }
}

/// What `/healthz` answers.
#[derive(Debug, Serialize)]
pub struct Health {
    /// Every scenario healthy (HTTP 200; otherwise 503).
    pub healthy: bool,
    pub scenarios: Vec<ScenarioHealth>,
}

#[derive(Debug, Serialize)]
pub struct ScenarioHealth {
    pub id: String,
    /// Started, source alive and every link connected.
    pub healthy: bool,
    /// Sessions open and capture started.
    pub started: bool,
    pub source_alive: bool,
    /// Seconds since the last frame; `null` before the first.
    pub last_frame_age_s: Option<f64>,
    pub queue_depth: u64,
    pub plan_generation: u64,
    pub alarms: u64,
    pub links: Vec<LinkHealth>,
}

#[derive(Debug, Serialize)]
pub struct LinkHealth {
    pub name: String,
    pub connected: bool,
    pub reconnects: u64,
    pub backlog: u64,
    pub dropped: u64,
    pub last_error: Option<String>,
}

impl Health {
    pub fn of(statuses: &[Arc<ScenarioStatus>]) -> Health {
        use std::sync::atomic::Ordering::Relaxed;
        let now = now_ms();
        let scenarios: Vec<ScenarioHealth> = statuses
            .iter()
            .map(|s| {
                let links: Vec<LinkHealth> = s
                    .links()
                    .into_iter()
                    .map(|(name, l)| LinkHealth {
                        name,
                        connected: l.connected.load(Relaxed),
                        reconnects: l.reconnects.load(Relaxed),
                        backlog: l.backlog.load(Relaxed),
                        dropped: l.dropped.load(Relaxed),
                        last_error: l.last_error(),
                    })
                    .collect();
                let started = s.started.load(Relaxed);
                let source_alive = s.source_alive.load(Relaxed);
                let last = s.last_frame_ms.load(Relaxed);
                ScenarioHealth {
                    id: s.id.clone(),
                    healthy: started && source_alive && links.iter().all(|l| l.connected),
                    started,
                    source_alive,
                    last_frame_age_s: (last > 0).then(|| now.saturating_sub(last) as f64 / 1000.0),
                    queue_depth: s.queue_depth.load(Relaxed),
                    plan_generation: s.plan_generation.load(Relaxed),
                    alarms: s.alarms_raised(),
                    links,
                }
            })
            .collect();
        Health {
            healthy: scenarios.iter().all(|s| s.healthy),
            scenarios,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_is_503_while_a_link_is_down_or_the_source_has_ended() {
        let s = ScenarioStatus::new("a");
        let statuses = vec![Arc::clone(&s)];
        let metrics = Metrics::new(statuses.clone());
        // Not started yet: sessions still opening.
        assert_eq!(answer("/healthz", &metrics, &statuses).0, 503);
        s.started.store(true, Ordering::SeqCst);
        s.frame_arrived();
        let (code, _, body) = answer("/healthz?verbose", &metrics, &statuses);
        assert_eq!(code, 200, "{body}");
        let plc = s.link("plc");
        plc.set_error("connection refused");
        let (code, _, body) = answer("/healthz", &metrics, &statuses);
        assert_eq!(code, 503);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["scenarios"][0]["links"][0]["name"], "plc");
        assert_eq!(
            json["scenarios"][0]["links"][0]["last_error"],
            "connection refused"
        );
        plc.set_connected(true);
        assert_eq!(answer("/healthz", &metrics, &statuses).0, 200);
        s.source_alive.store(false, Ordering::SeqCst);
        assert_eq!(answer("/healthz", &metrics, &statuses).0, 503);
        assert_eq!(answer("/other", &metrics, &statuses).0, 404);
    }

    #[test]
    fn link_state_is_in_metrics() {
        let s = ScenarioStatus::new("a");
        let mqtt = s.link("mqtt");
        mqtt.reconnects.store(3, Ordering::SeqCst);
        mqtt.backlog.store(17, Ordering::SeqCst);
        let metrics = Metrics::new(vec![s]);
        let text = metrics.render().unwrap();
        assert!(
            text.contains("lineside_link_reconnects_total{scenario=\"a\",link=\"mqtt\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("lineside_link_backlog{scenario=\"a\",link=\"mqtt\"} 17"),
            "{text}"
        );
    }

    #[test]
    fn a_port_in_use_is_refused_up_front() {
        let first = Endpoint::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let err = Endpoint::bind(first.addr()).err().unwrap();
        assert!(err.to_string().contains("[service] listen"), "{err}");
    }
}

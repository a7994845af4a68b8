//! `/health` for load balancers and `/metrics` in the Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{services, Http};

pub async fn health(State(http): State<Arc<Http>>) -> Response {
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "web_client": http.assets.version(),
        "uptime_seconds": http.server.started.elapsed().as_secs(),
    });
    ([(header::CACHE_CONTROL, "no-store"), (header::CONTENT_TYPE, "application/json")], body.to_string())
        .into_response()
}

/// One metric in the text exposition format.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

pub async fn metrics(State(http): State<Arc<Http>>) -> Response {
    let s = &http.server;
    let counts = services::muc_counts(s);
    let mut out = String::with_capacity(1024);
    metric(
        &mut out,
        "amphi_sessions",
        "gauge",
        "Signed-in client sessions (bound resources).",
        s.registry.session_count(),
    );
    let ws = http.websockets.load(Ordering::Relaxed);
    metric(&mut out, "amphi_websocket_clients", "gauge", "Open XMPP WebSocket connections.", ws);
    let requests = http.requests.load(Ordering::Relaxed);
    metric(&mut out, "amphi_http_requests_total", "counter", "HTTP requests received.", requests);
    let stanzas = s.stanzas_in.load(std::sync::atomic::Ordering::Relaxed);
    metric(
        &mut out,
        "amphi_stanzas_received_total",
        "counter",
        "Stanzas received from clients (rate() gives stanzas/s).",
        stanzas,
    );
    metric(&mut out, "amphi_muc_rooms", "gauge", "Meetings: rooms with at least one occupant.", counts.meetings);
    metric(&mut out, "amphi_muc_occupants", "gauge", "Participants: occupants of all rooms.", counts.participants);
    metric(
        &mut out,
        "amphi_capacity",
        "gauge",
        "Configured participant capacity (0: no limit).",
        s.config.http.capacity,
    );
    metric(
        &mut out,
        "amphi_uptime_seconds",
        "counter",
        "Seconds since the server started.",
        s.started.elapsed().as_secs(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], out)
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn metric_format() {
        let mut s = String::new();
        super::metric(&mut s, "amphi_x", "gauge", "An x.", 3);
        assert_eq!(s, "# HELP amphi_x An x.\n# TYPE amphi_x gauge\namphi_x 3\n");
    }
}

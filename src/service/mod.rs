//! Running as a service: the health and metrics endpoint, the metrics of the outcome
//! stream, and systemd's notify protocol.

pub mod http;
mod metrics;
pub mod notify;

pub use http::{BindError, Endpoint, Health};
pub use metrics::{verdict_name, Metrics, MetricsSink};

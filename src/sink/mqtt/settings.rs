//! `[mqtt]` checked into [`MqttSettings`]: ports in range, topic levels MQTT accepts, and
//! the password and TLS files read now, so `validate` reports them with their line.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::schema::MqttSection;
use crate::config::{Diagnostic, ScenarioFile};

const DEFAULT_PORT: u16 = 1883;
const DEFAULT_TLS_PORT: u16 = 8883;
const DEFAULT_SPOOL_MAX_BYTES: u64 = 64 << 20;
/// Below this a spool would hold only a handful of results.
const MIN_SPOOL_MAX_BYTES: u64 = 64 << 10;
const MAX_FLUSH_S: f64 = 3600.0;

#[derive(Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub station: String,
    pub topic_prefix: String,
    /// Empty: `lineside-<station>-<scenario id>`.
    pub client_id: Option<String>,
    pub credentials: Option<(String, String)>,
    pub tls: Option<TlsFiles>,
    pub keep_alive: Duration,
    /// Zero: no stats messages.
    pub stats_every: Duration,
    /// `None`: `<output dir>/mqtt-spool`.
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: u64,
    pub flush_timeout: Duration,
}

impl std::fmt::Debug for MqttSettings {
    // The password stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("station", &self.station)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// PEM contents, read when the scenario is checked.
#[derive(Clone)]
pub struct TlsFiles {
    pub ca: Vec<u8>,
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

/// Reads `[mqtt]`; `None` when the section is absent or wrong (the errors say why).
pub fn settings(f: &ScenarioFile, errs: &mut Vec<Diagnostic>) -> Option<MqttSettings> {
    if f.section_keys("mqtt", &[]).is_empty() && !has_section(f) {
        return None;
    }
    let s: MqttSection = match f.section("mqtt", &[]) {
        Ok(s) => s,
        Err(d) => {
            errs.push(d);
            return None;
        }
    };
    let before = errs.len();
    if s.host.trim().is_empty() {
        errs.push(f.diag(
            "mqtt.host",
            "is empty; give the broker's host name or address",
        ));
    }
    let default_port = if s.ca_file.is_some() {
        DEFAULT_TLS_PORT
    } else {
        DEFAULT_PORT
    };
    let port = match s.port.map(u16::try_from) {
        None => default_port,
        Some(Ok(p)) if p > 0 => p,
        Some(_) => {
            errs.push(f.diag(
                "mqtt.port",
                "must be a TCP port, 1 to 65535 (1883 is MQTT's, 8883 MQTT over TLS)",
            ));
            default_port
        }
    };
    let station = s.station.clone().unwrap_or_else(host_name);
    check_level(f, "mqtt.station", &station, errs);
    let topic_prefix = s.topic_prefix.clone().unwrap_or_else(|| "lineside".into());
    for level in topic_prefix.split('/') {
        check_level(f, "mqtt.topic_prefix", level, errs);
    }
    if let Some(id) = &s.client_id {
        if id.is_empty() || id.len() > 128 {
            errs.push(f.diag("mqtt.client_id", "must be 1 to 128 characters"));
        }
    }
    let password = match (&s.password, &s.password_file) {
        (Some(_), Some(_)) => {
            errs.push(f.diag(
                "mqtt.password_file",
                "give either password or password_file, not both",
            ));
            None
        }
        (Some(p), None) => Some(p.clone()),
        (None, Some(path)) => {
            let path = f.resolve(path);
            match std::fs::read_to_string(&path) {
                Ok(t) => Some(t.lines().next().unwrap_or("").to_string()),
                Err(e) => {
                    errs.push(f.diag(
                        "mqtt.password_file",
                        format!("cannot read {}: {e}", path.display()),
                    ));
                    None
                }
            }
        }
        (None, None) => None,
    };
    let credentials = match (&s.username, password) {
        (Some(u), p) => Some((u.clone(), p.unwrap_or_default())),
        (None, Some(_)) => {
            errs.push(f.diag(
                "mqtt.username",
                "is missing: a password is given, so give the user name too",
            ));
            None
        }
        (None, None) => None,
    };
    let tls = tls_files(f, &s, errs);
    let spool_max_bytes = s.spool_max_bytes.unwrap_or(DEFAULT_SPOOL_MAX_BYTES);
    if spool_max_bytes < MIN_SPOOL_MAX_BYTES {
        errs.push(f.diag(
            "mqtt.spool_max_bytes",
            format!("is below {MIN_SPOOL_MAX_BYTES} (64 KiB); give the spool room for at least a few hundred results"),
        ));
    }
    let flush_s = s.flush_timeout_s.unwrap_or(5.0);
    if !(0.0..=MAX_FLUSH_S).contains(&flush_s) {
        errs.push(f.diag("mqtt.flush_timeout_s", "must be 0 to 3600 seconds"));
    }
    let keep_alive_s = s.keep_alive_s.unwrap_or(30);
    if !(5..=3600).contains(&keep_alive_s) {
        errs.push(f.diag("mqtt.keep_alive_s", "must be 5 to 3600 seconds"));
    }
    let stats_every_s = s.stats_every_s.unwrap_or(10);
    if stats_every_s > 86_400 {
        errs.push(f.diag("mqtt.stats_every_s", "must be 0 (off) to 86400 seconds"));
    }
    if errs.len() > before {
        return None;
    }
    Some(MqttSettings {
        host: s.host,
        port,
        station,
        topic_prefix,
        client_id: s.client_id,
        credentials,
        tls,
        keep_alive: Duration::from_secs(keep_alive_s),
        stats_every: Duration::from_secs(stats_every_s),
        spool_dir: s.spool_dir.map(|d| f.resolve(&d)),
        spool_max_bytes,
        flush_timeout: Duration::from_secs_f64(flush_s.clamp(0.0, MAX_FLUSH_S)),
    })
}

fn has_section(f: &ScenarioFile) -> bool {
    f.diag("mqtt", "").line.is_some()
}

fn tls_files(f: &ScenarioFile, s: &MqttSection, errs: &mut Vec<Diagnostic>) -> Option<TlsFiles> {
    let mut read = |key: &str, path: &PathBuf| {
        let path = f.resolve(path);
        match std::fs::read(&path) {
            Ok(b) if contains_pem(&b) => Some(b),
            Ok(_) => {
                errs.push(f.diag(
                    key,
                    format!(
                        "{} holds no PEM block (-----BEGIN ...); give a PEM file",
                        path.display()
                    ),
                ));
                None
            }
            Err(e) => {
                errs.push(f.diag(key, format!("cannot read {}: {e}", path.display())));
                None
            }
        }
    };
    let ca = s.ca_file.as_ref().and_then(|p| read("mqtt.ca_file", p));
    let cert = s.cert_file.as_ref().and_then(|p| read("mqtt.cert_file", p));
    let key = s.key_file.as_ref().and_then(|p| read("mqtt.key_file", p));
    if (s.cert_file.is_some() || s.key_file.is_some()) && s.ca_file.is_none() {
        errs.push(f.diag(
            "mqtt.cert_file",
            "a client certificate needs TLS: give ca_file (the CA that signed the broker's certificate) too",
        ));
    }
    if s.cert_file.is_some() != s.key_file.is_some() {
        errs.push(f.diag(
            "mqtt.key_file",
            "give both cert_file and key_file for a client certificate, or neither",
        ));
    }
    let client = cert.zip(key);
    ca.map(|ca| TlsFiles { ca, client })
}

fn contains_pem(b: &[u8]) -> bool {
    b.windows(11).any(|w| w == b"-----BEGIN ")
}

/// One topic level: no wildcards, no `/`, not empty, printable.
fn check_level(f: &ScenarioFile, key: &str, level: &str, errs: &mut Vec<Diagnostic>) {
    let ok = !level.is_empty()
        && level.len() <= 64
        && level
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        errs.push(f.diag(
            key,
            format!("`{level}` is not a usable topic level: use 1 to 64 letters, digits, `-`, `_` or `.`"),
        ));
    }
}

/// This machine's name, the default station.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "station".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

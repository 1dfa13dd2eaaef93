//! The broker link: one thread that connects, sends the spool in order at QoS 1, moves
//! the acknowledged watermark on each PUBACK, and publishes status, stats and alarms.
//!
//! Each connection gets a fresh rumqttc client and event loop (its in-memory queue is lost
//! on a reconnect anyway); after connecting, sending starts again at the watermark, so
//! entries sent but not acknowledged before a loss go out again (QoS 1: at least once).
//! A PUBACK is matched to its entry through the order rumqttc reports outgoing publishes.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rumqttc::{
    Client, ConnectionError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration,
    Transport,
};

use super::settings::MqttSettings;
use super::spool::{Entry, Spool};
use crate::status::{LinkStatus, ScenarioStatus};

/// Spool entries sent and not yet acknowledged, at most.
const WINDOW: usize = 64;
const RECONNECT_MIN: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(2);
/// How often an advanced watermark is written to disk (a crash re-sends at most this much).
const WATERMARK_EVERY: Duration = Duration::from_millis(200);
/// How long a clean shutdown waits for the broker to take `offline`.
const GOODBYE_WAIT: Duration = Duration::from_secs(1);

/// The topics of one scenario.
#[derive(Debug, Clone)]
pub struct Topics {
    pub result: String,
    pub status: String,
    pub stats: String,
    pub alarm: String,
}

impl Topics {
    pub fn new(prefix: &str, station: &str, scenario: &str) -> Topics {
        let base = format!("{prefix}/{station}/{scenario}");
        Topics {
            result: format!("{base}/result"),
            status: format!("{base}/status"),
            stats: format!("{base}/stats"),
            alarm: format!("{base}/alarm"),
        }
    }
}

/// Verdict counts of this run, kept by the sink and read by the stats message.
#[derive(Debug, Default)]
pub struct Counts {
    pub ok: AtomicU64,
    pub ng: AtomicU64,
    pub error: AtomicU64,
    pub timeout: AtomicU64,
    /// Frames a live source dropped (never inspected).
    pub skipped: AtomicU64,
}

/// What the sink and the link thread share.
pub struct Shared {
    pub spool: Mutex<Spool>,
    pub stop: AtomicBool,
    pub counts: Counts,
    pub link: Arc<LinkStatus>,
    pub status: Arc<ScenarioStatus>,
    pub topics: Topics,
    pub run_id: String,
}

impl Shared {
    pub fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the link thread reports when it ends.
pub struct LinkEnd {
    pub left_in_spool: u64,
}

/// One connection's event stream, read on its own thread (rumqttc's blocking `recv`).
struct Connection {
    client: Client,
    events: Receiver<Result<Event, ConnectionError>>,
}

fn options(settings: &MqttSettings, client_id: &str, topics: &Topics) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, settings.host.clone(), settings.port);
    o.set_keep_alive(settings.keep_alive);
    o.set_clean_session(true);
    o.set_inflight(WINDOW as u16 + 4);
    o.set_last_will(LastWill::new(
        topics.status.clone(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some((u, p)) = &settings.credentials {
        o.set_credentials(u.clone(), p.clone());
    }
    if let Some(tls) = &settings.tls {
        o.set_transport(Transport::Tls(TlsConfiguration::Simple {
            ca: tls.ca.clone(),
            alpn: None,
            client_auth: tls.client.clone(),
        }));
    }
    o
}

fn connect(o: MqttOptions) -> Connection {
    let (client, mut connection) = Client::new(o, WINDOW * 2 + 16);
    let (tx, events) = crossbeam_channel::bounded(256);
    // Ends when the client is dropped (requests done) or the connection fails.
    std::thread::Builder::new()
        .name("mqtt-poll".into())
        .spawn(move || {
            while let Ok(ev) = connection.recv() {
                let failed = ev.is_err();
                if tx.send(ev).is_err() || failed {
                    break;
                }
            }
        })
        .ok();
    Connection { client, events }
}

/// What a publish request was, so its PUBACK can be matched.
#[derive(Debug, Clone, Copy)]
enum Tag {
    Entry(u64),
    Other,
}

/// State of one live connection.
struct Session {
    conn: Connection,
    /// Publish requests not yet reported sent by rumqttc, in request order.
    requested: VecDeque<Tag>,
    /// A publish held back by rumqttc on a packet-id collision.
    collided: Option<(u16, Tag)>,
    by_pkid: HashMap<u16, Tag>,
    /// Entries sent and not acknowledged.
    unacked: BTreeSet<u64>,
    /// The next entry to send.
    send_from: u64,
    goodbye_acked: bool,
}

impl Session {
    fn publish(&mut self, tag: Tag, topic: &str, qos: QoS, retain: bool, payload: Vec<u8>) -> bool {
        if self
            .conn
            .client
            .try_publish(topic, qos, retain, payload)
            .is_err()
        {
            return false;
        }
        self.requested.push_back(tag);
        if let Tag::Entry(n) = tag {
            self.unacked.insert(n);
        }
        true
    }

    /// Every entry below this is acknowledged.
    fn watermark(&self) -> u64 {
        self.unacked.first().copied().unwrap_or(self.send_from)
    }
}

pub fn run(
    shared: Arc<Shared>,
    settings: MqttSettings,
    client_id: String,
    wake: Receiver<()>,
) -> LinkEnd {
    let mut link = Link {
        shared,
        settings,
        client_id,
        wake,
        ever_connected: false,
        alarms_seen: 0,
        next_stats: Instant::now(),
        stop_deadline: None,
    };
    link.run()
}

struct Link {
    shared: Arc<Shared>,
    settings: MqttSettings,
    client_id: String,
    wake: Receiver<()>,
    ever_connected: bool,
    alarms_seen: u64,
    next_stats: Instant,
    /// Set once stopping: the spool may drain until then.
    stop_deadline: Option<Instant>,
}

impl Link {
    fn run(&mut self) -> LinkEnd {
        let mut backoff = RECONNECT_MIN;
        loop {
            if self.stopping_and_due() {
                break;
            }
            match self.session() {
                Ok(true) => break,
                Ok(false) => backoff = RECONNECT_MIN,
                Err(e) => {
                    self.shared.link.set_error(e.clone());
                    tracing::debug!(scenario = %self.shared.status.id, "MQTT: {e}");
                }
            }
            self.shared.link.connected.store(false, Ordering::SeqCst);
            self.save_watermark();
            // Wait before the next try, still woken by a stop.
            let until = Instant::now() + backoff;
            while Instant::now() < until && !self.stopping_and_due() {
                let left = until.saturating_duration_since(Instant::now());
                let _ = self.wake.recv_timeout(left.min(Duration::from_millis(100)));
                self.update_backlog();
            }
            backoff = (backoff * 2).min(RECONNECT_MAX);
        }
        self.shared.link.connected.store(false, Ordering::SeqCst);
        self.save_watermark();
        LinkEnd {
            left_in_spool: self.shared.spool().depth(),
        }
    }

    fn stopping_and_due(&mut self) -> bool {
        if !self.shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        let deadline = *self
            .stop_deadline
            .get_or_insert_with(|| Instant::now() + self.settings.flush_timeout);
        Instant::now() >= deadline || self.shared.spool().depth() == 0
    }

    /// One connection, from connect to loss (`Ok(false)`) or a clean goodbye (`Ok(true)`).
    fn session(&mut self) -> Result<bool, String> {
        let conn = connect(options(
            &self.settings,
            &self.client_id,
            &self.shared.topics,
        ));
        let connect_limit = Instant::now() + Duration::from_secs(5);
        loop {
            let left = connect_limit.saturating_duration_since(Instant::now());
            match conn
                .events
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                    if ack.code != rumqttc::ConnectReturnCode::Success {
                        return Err(format!("broker refused the connection: {:?}", ack.code));
                    }
                    break;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(format!(
                        "cannot reach {}:{}: {e}",
                        self.settings.host, self.settings.port
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => return Err("connection ended".into()),
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() >= connect_limit {
                        return Err(format!(
                            "no answer from {}:{} within 5 s",
                            self.settings.host, self.settings.port
                        ));
                    }
                    if self.stopping_and_due() {
                        return Ok(true);
                    }
                }
            }
        }
        if self.ever_connected {
            self.shared.link.reconnects.fetch_add(1, Ordering::SeqCst);
        }
        self.ever_connected = true;
        self.shared.link.set_connected(true);
        tracing::info!(
            scenario = %self.shared.status.id,
            "MQTT connected to {}:{}; {} results in the spool",
            self.settings.host,
            self.settings.port,
            self.shared.spool().depth()
        );
        let first = self.shared.spool().first_unacked();
        let mut s = Session {
            conn,
            requested: VecDeque::new(),
            collided: None,
            by_pkid: HashMap::new(),
            unacked: BTreeSet::new(),
            send_from: first,
            goodbye_acked: false,
        };
        let status = self.shared.topics.status.clone();
        s.publish(
            Tag::Other,
            &status,
            QoS::AtLeastOnce,
            true,
            b"online".to_vec(),
        );
        let mut last_save = Instant::now();
        let mut batch: Vec<Entry> = Vec::new();
        loop {
            if self.stopping_and_due() {
                self.goodbye(&mut s);
                return Ok(true);
            }
            self.fill_window(&mut s, &mut batch)
                .map_err(|e| e.to_string())?;
            self.publish_alarms(&mut s);
            if !self.settings.stats_every.is_zero() && Instant::now() >= self.next_stats {
                self.next_stats = Instant::now() + self.settings.stats_every;
                let stats = self.stats_json();
                let topic = self.shared.topics.stats.clone();
                s.publish(Tag::Other, &topic, QoS::AtMostOnce, false, stats);
            }
            crossbeam_channel::select! {
                recv(s.conn.events) -> ev => match ev {
                    Ok(Ok(ev)) => self.on_event(&mut s, &ev),
                    Ok(Err(e)) => return Err(format!("connection to {}:{} lost: {e}", self.settings.host, self.settings.port)),
                    Err(_) => return Err("connection ended".into()),
                },
                recv(self.wake) -> _ => {},
                default(Duration::from_millis(50)) => {},
            }
            // Drain what else is waiting before sending more.
            while let Ok(ev) = s.conn.events.try_recv() {
                match ev {
                    Ok(ev) => self.on_event(&mut s, &ev),
                    Err(e) => {
                        return Err(format!(
                            "connection to {}:{} lost: {e}",
                            self.settings.host, self.settings.port
                        ))
                    }
                }
            }
            let mark = s.watermark();
            self.shared.spool().ack(mark);
            self.update_backlog();
            if last_save.elapsed() >= WATERMARK_EVERY || self.shared.spool().depth() == 0 {
                self.save_watermark();
                last_save = Instant::now();
            }
        }
    }

    /// Sends spool entries until `WINDOW` are unacknowledged; fsyncs the spool first, so
    /// nothing goes out that a power cut could take back.
    fn fill_window(
        &mut self,
        s: &mut Session,
        batch: &mut Vec<Entry>,
    ) -> Result<(), super::spool::SpoolError> {
        let room = WINDOW.saturating_sub(s.unacked.len());
        if room == 0 {
            return Ok(());
        }
        batch.clear();
        let handle = {
            let mut spool = self.shared.spool();
            // Entries dropped by a full spool are not sent.
            s.send_from = s.send_from.max(spool.first_unacked());
            spool.read(s.send_from, room, batch)?;
            spool.sync_handle()?
        };
        if let Some(f) = handle {
            if let Err(e) = f.sync_data() {
                tracing::warn!("MQTT spool fsync: {e}");
            }
        }
        for e in batch.drain(..) {
            let n = e.number;
            if !s.publish(Tag::Entry(n), &e.topic, QoS::AtLeastOnce, false, e.payload) {
                break;
            }
            s.send_from = n + 1;
        }
        Ok(())
    }

    fn on_event(&mut self, s: &mut Session, ev: &Event) {
        match ev {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                let tag = match s.collided.take() {
                    Some((p, tag)) if p == *pkid => tag,
                    other => {
                        s.collided = other;
                        s.requested.pop_front().unwrap_or(Tag::Other)
                    }
                };
                if *pkid != 0 {
                    s.by_pkid.insert(*pkid, tag);
                }
            }
            Event::Outgoing(Outgoing::AwaitAck(pkid)) => {
                let tag = s.requested.pop_front().unwrap_or(Tag::Other);
                s.collided = Some((*pkid, tag));
            }
            Event::Incoming(Packet::PubAck(ack)) => match s.by_pkid.remove(&ack.pkid) {
                Some(Tag::Entry(n)) => {
                    s.unacked.remove(&n);
                }
                Some(Tag::Other) => s.goodbye_acked = true,
                None => {}
            },
            _ => {}
        }
    }

    /// Publishes alarms raised since the last look, QoS 1.
    fn publish_alarms(&mut self, s: &mut Session) {
        for a in self.shared.status.alarms_since(self.alarms_seen) {
            let payload = serde_json::json!({
                "number": a.number,
                "kind": a.kind,
                "message": a.message,
                "at_ms": a.at_ms,
                "run_id": self.shared.run_id,
            });
            let topic = self.shared.topics.alarm.clone();
            if !s.publish(
                Tag::Other,
                &topic,
                QoS::AtLeastOnce,
                false,
                payload.to_string().into_bytes(),
            ) {
                return;
            }
            self.alarms_seen = a.number;
        }
    }

    /// `offline` (retained), then DISCONNECT so the broker drops the last will.
    fn goodbye(&mut self, s: &mut Session) {
        let stats = self.stats_json();
        let topic = self.shared.topics.stats.clone();
        s.publish(Tag::Other, &topic, QoS::AtMostOnce, false, stats);
        s.goodbye_acked = false;
        let status = self.shared.topics.status.clone();
        if !s.publish(
            Tag::Other,
            &status,
            QoS::AtLeastOnce,
            true,
            b"offline".to_vec(),
        ) {
            return;
        }
        let until = Instant::now() + GOODBYE_WAIT;
        while !s.goodbye_acked && Instant::now() < until {
            match s.conn.events.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(ev)) => self.on_event(s, &ev),
                Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        let mark = s.watermark();
        self.shared.spool().ack(mark);
        let _ = s.conn.client.try_disconnect();
        // Give the event loop a moment to write DISCONNECT.
        let until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < until {
            match s.conn.events.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(Event::Outgoing(Outgoing::Disconnect)))
                | Ok(Err(_))
                | Err(RecvTimeoutError::Disconnected) => break,
                _ => {}
            }
        }
    }

    fn stats_json(&self) -> Vec<u8> {
        let c = &self.shared.counts;
        let (depth, dropped) = {
            let spool = self.shared.spool();
            (spool.depth(), spool.dropped())
        };
        serde_json::json!({
            "run_id": self.shared.run_id,
            "time": crate::sink::rfc3339(std::time::SystemTime::now()),
            "counts": {
                "OK": c.ok.load(Ordering::Relaxed),
                "NG": c.ng.load(Ordering::Relaxed),
                "ERROR": c.error.load(Ordering::Relaxed),
                "TIMEOUT": c.timeout.load(Ordering::Relaxed),
                "skipped": c.skipped.load(Ordering::Relaxed),
            },
            "spool_depth": depth,
            "spool_dropped": dropped,
            "reconnects": self.shared.link.reconnects.load(Ordering::Relaxed),
            "alarms_raised": self.shared.status.alarms_raised(),
        })
        .to_string()
        .into_bytes()
    }

    fn update_backlog(&self) {
        let depth = self.shared.spool().depth();
        self.shared.link.backlog.store(depth, Ordering::Relaxed);
    }

    fn save_watermark(&self) {
        if let Err(e) = self.shared.spool().save_watermark() {
            tracing::warn!("{e}");
        }
    }
}

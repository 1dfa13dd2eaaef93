//! Shared by the tests/mqtt_*.rs tests: a real mosquitto on a free loopback port (its own
//! config in a temp folder, stopped by a Drop guard), a subscriber that records every
//! message, and a synthetic-camera scenario that sends to it.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// mosquitto, or a panic that says how to install it (scripts/setup.sh does).
pub fn mosquitto_bin() -> PathBuf {
    for p in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("mosquitto is not installed: run scripts/setup.sh (apt-get install mosquitto mosquitto-clients)");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A mosquitto process; killed when dropped.
pub struct Broker {
    pub port: u16,
    pub dir: PathBuf,
    conf: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// Starts mosquitto on `port` with `extra` config lines. Persistence is on, so a
    /// subscriber's session and its queued messages survive a stop and start.
    pub fn start(dir: &Path, port: u16, extra: &str) -> Broker {
        Broker::start_conf(
            dir,
            port,
            &format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}"),
        )
    }

    /// Starts mosquitto with `listeners` (listener lines and their settings); `port` is
    /// the one waited for.
    pub fn start_conf(dir: &Path, port: u16, listeners: &str) -> Broker {
        let dir = dir.join(format!("broker-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("mosquitto.conf");
        // As root, mosquitto would switch to its own user, who cannot write our temp dir.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root\n"
        } else {
            ""
        };
        std::fs::write(
            &conf,
            format!(
                "{user}persistence true\npersistence_location {}/\nmax_queued_messages 100000\n\
                 log_dest stderr\n{listeners}\n",
                dir.display()
            ),
        )
        .unwrap();
        let mut b = Broker {
            port,
            dir,
            conf,
            child: None,
        };
        b.restart();
        b
    }

    /// Starts it again on the same port (after `stop`).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))
            .unwrap();
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {} within 10 s; see {}",
                self.port,
                self.dir.join("mosquitto.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (mosquitto saves its sessions), then waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    /// When the subscriber got it.
    pub at: std::time::SystemTime,
}

impl Msg {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).unwrap()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap()
    }
}

/// Records every message on `filter`, QoS 1, with a persistent session so nothing sent
/// while the broker was down (or the subscriber away) is missed. Stops when dropped.
pub struct Subscriber {
    pub messages: Arc<Mutex<Vec<Msg>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    pub fn start(port: u16, filter: &str, id: &str) -> Subscriber {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_clean_session(false);
        o.set_keep_alive(Duration::from_secs(5));
        let (client, mut conn) = Client::new(o, 64);
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let subscribed = Arc::new(AtomicBool::new(false));
        let thread = {
            let (messages, stop, subscribed) = (
                Arc::clone(&messages),
                Arc::clone(&stop),
                Arc::clone(&subscribed),
            );
            let filter = filter.to_string();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match conn.recv_timeout(Duration::from_millis(100)) {
                        Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                            client.subscribe(filter.clone(), QoS::AtLeastOnce).unwrap();
                        }
                        Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                            subscribed.store(true, Ordering::SeqCst)
                        }
                        Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                            messages.lock().unwrap().push(Msg {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                                at: std::time::SystemTime::now(),
                            })
                        }
                        Ok(Ok(_)) | Err(rumqttc::RecvTimeoutError::Timeout) => {}
                        // The broker is down: try again shortly (the event loop reconnects).
                        Ok(Err(_)) => std::thread::sleep(Duration::from_millis(200)),
                        Err(rumqttc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !subscribed.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "subscriber not subscribed within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Subscriber {
            messages,
            stop,
            thread: Some(thread),
        }
    }

    pub fn on(&self, suffix: &str) -> Vec<Msg> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.topic.ends_with(suffix))
            .cloned()
            .collect()
    }

    /// Waits until `done` holds for the messages so far, or `limit` passes.
    pub fn wait_for(&self, limit: Duration, done: impl Fn(&[Msg]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.messages.lock().unwrap()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A synthetic camera (320x240, not live) of `frames` frames at `fps` (0: unpaced), logging
/// into `dir/out` and sending to the broker on `port`, with `mqtt_extra` lines in `[mqtt]`.
pub fn scenario(dir: &Path, frames: u64, fps: u32, port: u16, mqtt_extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("scenarios/demo-synthetic.toml")).unwrap();
    let out = dir.join("out");
    let model_dir = root().join("models/efficientnet-lite0");
    let mut s: String = text
        .lines()
        .map(|l| match l {
            l if l.starts_with("dir = ") => format!("dir = \"{}\"", out.display()),
            l if l.starts_with("frames = ") => format!("frames = {frames}"),
            l if l.starts_with("path = ") => {
                format!(
                    "path = \"{}\"",
                    model_dir.join("efficientnet_lite0.onnx").display()
                )
            }
            l if l.starts_with("labels = ") => {
                format!(
                    "labels = \"{}\"",
                    model_dir.join("imagenet_labels.txt").display()
                )
            }
            "width = 1280" => "width = 320".into(),
            "height = 720" => "height = 240".into(),
            "fps = 30" => format!("fps = {fps}"),
            "live = true" => "live = false".into(),
            l => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    s.push_str(&format!(
        "\n\n[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nstation = \"st1\"\nstats_every_s = 1\n{mqtt_extra}\n"
    ));
    let p = dir.join("scenario.toml");
    std::fs::write(&p, s).unwrap();
    p
}

pub fn lineside(scenario: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lineside"));
    c.args(["run", "--no-progress", "--cores", "2"])
        .arg(scenario);
    c
}

/// A lineside run in the background, its stderr collected on a thread.
pub struct Running {
    child: std::process::Child,
    reader: std::thread::JoinHandle<String>,
}

impl Running {
    pub fn start(scenario: &Path) -> Running {
        let mut child = lineside(scenario)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let reader =
            std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
        Running { child, reader }
    }

    /// Waits for the run to end on its own (at most `limit`); it must succeed. Returns its
    /// stderr.
    pub fn finish(mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let err = self.reader.join().unwrap();
                assert!(status.success(), "lineside failed ({status}):\n{err}");
                return err;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "lineside did not finish within {limit:?}:\n{}",
                    self.reader.join().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs lineside to the end (at most `limit`), returning its stderr.
pub fn run_to_end(scenario: &Path, limit: Duration) -> String {
    Running::start(scenario).finish(limit)
}

/// The defect log's records, one JSON line each.
pub fn defect_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("out/defects.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Spool segments left in the default spool folder.
pub fn spool_segments(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir.join("out/mqtt-spool")) {
        Ok(rd) => rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `(run_id, seq)` of each result, in arrival order.
pub fn result_keys(msgs: &[Msg]) -> Vec<(String, u64)> {
    msgs.iter()
        .filter(|m| m.topic.ends_with("/result"))
        .map(|m| {
            let v = m.json();
            (
                v["run_id"].as_str().unwrap().to_string(),
                v["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// First arrivals in order, and the number of repeats.
pub fn dedupe(keys: &[(String, u64)]) -> (Vec<(String, u64)>, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut firsts = Vec::new();
    for k in keys {
        if seen.insert(k.clone()) {
            firsts.push(k.clone());
        }
    }
    let dups = keys.len() - firsts.len();
    (firsts, dups)
}

/// Milliseconds from a result's decision (its `time`, RFC 3339 UTC) to its arrival.
pub fn delivery_ms(m: &Msg) -> f64 {
    let v = m.json();
    let t = v["time"].as_str().unwrap();
    // "YYYY-MM-DDTHH:MM:SS.mmmZ": the time of day is enough (a run never spans midnight here).
    let hms: Vec<f64> = t[11..23].split(':').map(|x| x.parse().unwrap()).collect();
    let decided = hms[0] * 3600.0 + hms[1] * 60.0 + hms[2];
    let at =
        m.at.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            % 86_400.0;
    (at - decided) * 1000.0
}

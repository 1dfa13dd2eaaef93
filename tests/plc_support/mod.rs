//! A PLC for the tests: tokio-modbus's Modbus TCP server on 127.0.0.1 over a bank of
//! holding registers, driven like a PLC program would (set a part id, bump the trigger
//! counter, read each result, acknowledge it — or not), plus the scenario the tests run.
#![allow(dead_code)]

use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio_modbus::prelude::{ExceptionCode, Request, Response};
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};

pub const TRIGGER: usize = 0;
pub const PART_ID: usize = 1;
pub const RESULT: usize = 10;
pub const ACK: usize = 20;
const REGISTERS: usize = 64;

/// One result as the PLC read it, and when.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub at: Instant,
    pub code: u16,
    pub part_id: u32,
    pub defects: u16,
    pub latency_ms: u16,
    pub sequence: u16,
}

#[derive(Default)]
struct Bank {
    regs: Mutex<Vec<u16>>,
    results: Mutex<Vec<Seen>>,
    /// Acknowledge each result as it is written (a PLC whose program reads it at once).
    auto_ack: AtomicBool,
    connections: AtomicU64,
    trigger_reads: AtomicU64,
}

pub struct TestPlc {
    pub addr: SocketAddr,
    bank: Arc<Bank>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct PlcService(Arc<Bank>);

impl tokio_modbus::server::Service for PlcService {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Request<'static>) -> Self::Future {
        let bank = &self.0;
        let mut regs = bank.regs.lock().unwrap();
        let range = |addr: u16, n: usize| {
            let a = usize::from(addr);
            (a + n <= REGISTERS).then_some(a..a + n)
        };
        ready(match req {
            Request::ReadHoldingRegisters(addr, n) => match range(addr, usize::from(n)) {
                Some(r) => {
                    if r.contains(&TRIGGER) {
                        bank.trigger_reads.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Response::ReadHoldingRegisters(regs[r].to_vec()))
                }
                None => Err(ExceptionCode::IllegalDataAddress),
            },
            Request::WriteMultipleRegisters(addr, words) => match range(addr, words.len()) {
                Some(r) => {
                    regs[r.clone()].copy_from_slice(&words);
                    if r.start == RESULT && words.len() == 6 {
                        bank.results.lock().unwrap().push(Seen {
                            at: Instant::now(),
                            code: words[0],
                            part_id: (u32::from(words[1]) << 16) | u32::from(words[2]),
                            defects: words[3],
                            latency_ms: words[4],
                            sequence: words[5],
                        });
                        if bank.auto_ack.load(Ordering::SeqCst) {
                            regs[ACK] = words[5];
                        }
                    }
                    Ok(Response::WriteMultipleRegisters(addr, words.len() as u16))
                }
                None => Err(ExceptionCode::IllegalDataAddress),
            },
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

impl TestPlc {
    /// A PLC on `port` (0: a free one), acknowledging results when `auto_ack`.
    pub fn start(port: u16, auto_ack: bool) -> TestPlc {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind loopback");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let bank = Arc::new(Bank {
            regs: Mutex::new(vec![0; REGISTERS]),
            auto_ack: AtomicBool::new(auto_ack),
            ..Bank::default()
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = {
            let bank = Arc::clone(&bank);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let server = Server::new(tokio::net::TcpListener::from_std(listener).unwrap());
                    let on_connected = |stream, peer| {
                        bank.connections.fetch_add(1, Ordering::SeqCst);
                        let bank = Arc::clone(&bank);
                        async move {
                            accept_tcp_connection(stream, peer, |_| {
                                Ok(Some(PlcService(Arc::clone(&bank))))
                            })
                        }
                    };
                    let _ = server
                        .serve_until(&on_connected, |_err| {}, async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
                // The runtime drops here: every connection closes, as when a PLC powers off.
            })
        };
        TestPlc {
            addr,
            bank,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn connections(&self) -> u64 {
        self.bank.connections.load(Ordering::SeqCst)
    }

    pub fn results(&self) -> Vec<Seen> {
        self.bank.results.lock().unwrap().clone()
    }

    pub fn result_count(&self) -> usize {
        self.bank.results.lock().unwrap().len()
    }

    /// Waits until lineside is connected and has read the trigger counter's baseline.
    pub fn wait_for_client(&self, within: Duration) {
        let until = Instant::now() + within;
        let reads = self.bank.trigger_reads.load(Ordering::SeqCst);
        while self.bank.trigger_reads.load(Ordering::SeqCst) < reads + 2 {
            assert!(
                Instant::now() < until,
                "lineside did not connect within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sets the part id and bumps the trigger counter, as the PLC's program does when a
    /// part reaches the camera. Returns when it did.
    pub fn trigger(&self, part_id: u32) -> Instant {
        let mut regs = self.bank.regs.lock().unwrap();
        regs[PART_ID] = (part_id >> 16) as u16;
        regs[PART_ID + 1] = (part_id & 0xffff) as u16;
        regs[TRIGGER] = regs[TRIGGER].wrapping_add(1);
        Instant::now()
    }

    /// Waits for result number `n` (1-based) to be written.
    pub fn wait_result(&self, n: usize, within: Duration) -> Seen {
        let until = Instant::now() + within;
        loop {
            if let Some(s) = self.bank.results.lock().unwrap().get(n - 1) {
                return *s;
            }
            assert!(Instant::now() < until, "no result {n} within {within:?}");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Powers the PLC off: the listener and every connection close.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for TestPlc {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The cover-glass scenario (a small segmentation model, OK and NG parts) triggered by
/// the PLC on `port`; `extra` is appended to `[plc]`-less text, `trigger` and `plc` to
/// their sections.
pub fn scenario(dir: &Path, port: u16, trigger: &str, plc: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = format!(
        r#"[scenario]
id = "plc-glass"

[source]
kind = "images"
path = "{samples}"
repeat = 200

[model]
path = "{model}"
workers = 1

[preprocess]
fit = "stretch"
interpolation = "linear"

[head]
kind = "segment"
background = "background"

[rules]
min_defect_area_px = 20

[[rules.count]]
name = "no scratch"
class = "scratch"
max = 0

[[rules.count]]
name = "no dirt"
class = "dirt"
max = 0

[trigger]
mode = "plc"
{trigger}

[plc]
host = "127.0.0.1"
port = {port}
poll_ms = 1
trigger_register = {TRIGGER}
part_id_register = {PART_ID}
result_register = {RESULT}
ack_register = {ACK}
{plc}

[output]
dir = "{out}"
sinks = ["defect_log", "summary", "plc"]
"#,
        samples = root.join("scenarios/samples/glass").display(),
        model = root.join("models/glass-seg/glass_seg.onnx").display(),
        out = dir.join("out").display(),
    );
    let path = dir.join("plc-glass.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("out/defects.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("out/summary.json")).unwrap()).unwrap()
}

/// Quantile `q` of sorted durations, in ms.
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

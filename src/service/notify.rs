//! systemd's notify protocol (`Type=notify`): READY once every scenario runs, WATCHDOG
//! while the process answers, STOPPING on drain, STATUS lines for `systemctl status`.
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

/// Sends `states`; a failure is logged, never fatal (the line runs without systemd).
pub fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!("cannot notify systemd ({states:?}): {e}");
    }
}

/// How often to send WATCHDOG=1: half the `WatchdogSec=` systemd asked for, or `None`
/// when it asked for none.
///
/// Read as sd_watchdog_enabled(3) does: `WATCHDOG_USEC`, and `WATCHDOG_PID` when it is set
/// must be this process (`sd_notify::watchdog_enabled` also refuses an unset pid).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

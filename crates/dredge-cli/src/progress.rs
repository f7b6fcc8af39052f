//! A progress line on standard error for operations long enough to leave a
//! terminal silent (a table scan, a large `parse` input): shown only when
//! stderr is a terminal, first after a second (short runs stay quiet),
//! redrawn at most four times a second, and ended by a final line.
//! Anything else written to stderr clears the line first ([`clear_line`]),
//! so logs and rejected lines never land in the middle of it.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an operation runs before its progress is first shown.
const FIRST_AFTER: Duration = Duration::from_secs(1);
/// The least time between two redraws.
const EVERY: Duration = Duration::from_millis(250);

/// Whether a progress line is on the terminal now (no newline after it).
static ON_SCREEN: AtomicBool = AtomicBool::new(false);

/// Erases the progress line, if one is shown, so that what is written to
/// stderr next starts a line of its own; the next redraw puts it back.
pub fn clear_line() {
    if ON_SCREEN.swap(false, Ordering::Relaxed) {
        let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
    }
}

/// One operation's progress line.
pub struct Progress {
    /// `None` when stderr is not a terminal: nothing is ever drawn.
    state: Option<Mutex<State>>,
}

struct State {
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// Progress on stderr if it is a terminal; silent otherwise.
    pub fn on_terminal() -> Progress {
        Progress { state: std::io::stderr().is_terminal().then(|| Mutex::new(State::new())) }
    }

    /// No progress at all: for output that shows its own (records
    /// streaming to the same terminal).
    pub fn hidden() -> Progress {
        Progress { state: None }
    }

    /// Whether ticks may draw anything: when not, callers can skip
    /// counting for it.
    pub fn is_shown(&self) -> bool {
        self.state.is_some()
    }

    /// Redraws the line with `text()` when it is due; `text` is called
    /// only then.
    pub fn tick(&self, text: impl FnOnce() -> String) {
        let Some(state) = &self.state else { return };
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if state.due(now) {
            state.last = Some(now);
            draw(&text(), false);
        }
    }

    /// Ends the line with `text(elapsed)` if any progress was shown (a
    /// short operation ends as silently as it ran).
    pub fn finish(&self, text: impl FnOnce(Duration) -> String) {
        let Some(state) = &self.state else { return };
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        if state.last.is_some() {
            draw(&text(state.started.elapsed()), true);
        }
        *state = State::new();
    }
}

impl State {
    fn new() -> State {
        State { started: Instant::now(), last: None }
    }

    /// Whether a redraw at `now` is due: the first a second in, then at
    /// most every quarter of a second.
    fn due(&self, now: Instant) -> bool {
        match self.last {
            None => now.duration_since(self.started) >= FIRST_AFTER,
            Some(last) => now.duration_since(last) >= EVERY,
        }
    }
}

fn draw(text: &str, last: bool) {
    let mut err = std::io::stderr().lock();
    let _ = if last { writeln!(err, "\r\x1b[K{text}") } else { write!(err, "\r\x1b[K{text}") };
    let _ = err.flush();
    ON_SCREEN.store(!last, Ordering::Relaxed);
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redraws_are_throttled() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut state = State { started: t0, last: None };
        assert!(!state.due(ms(999)), "short operations stay quiet");
        assert!(state.due(ms(1000)));
        state.last = Some(ms(1000));
        assert!(!state.due(ms(1249)));
        assert!(state.due(ms(1250)));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}

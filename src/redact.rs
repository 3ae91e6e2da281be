//! The one scrubber: every text that leaves the process or is stored passes through
//! [`scrub`] — stdout, stderr, log lines and files, the state file's free-text
//! columns (errors, run summaries), and anything later (webhook bodies).
//!
//! It knows every configured secret: each is [`register`]ed once, where the config
//! takes it in (`config::secret::take_secret`), together with the forms it travels in
//! — as written, percent-encoded (a URL or a form), JSON-escaped (a vendor echoing a
//! header inside a JSON string), and for basic auth the base64 of `user:password`.
//! `Bearer X` and `Basic X` are covered by their value. A vendor or a source that
//! echoes a request back (a header in an error `detail`, a URL in a message) is thus
//! scrubbed wherever its text goes, without each call site having to remember.
//!
//! Secrets are only ever added (a reloaded config adds its new ones; the old ones are
//! still scrubbed): forgetting one could never make output safer.

use std::borrow::Cow;
use std::sync::{Arc, PoisonError, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Shortest secret accepted: anything shorter is no credential, and scrubbing it
/// would garble ordinary words in the output.
pub const MIN_SECRET_CHARS: usize = 4;

struct Registry {
    /// Every form of every secret, without repeats.
    needles: Vec<String>,
    /// A matcher over `needles`, rebuilt when one is added; `None` while empty.
    matcher: Option<Arc<AhoCorasick>>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    needles: Vec::new(),
    matcher: None,
});

/// Adds a configured secret (and the forms it is sent in) to what is scrubbed.
pub fn register(secret: &str) {
    add(forms(secret));
}

/// Adds a basic-auth pair: the password, and `user:password` as sent (base64).
pub fn register_basic(username: &str, password: &str) {
    let mut all = forms(password);
    let pair = format!("{username}:{password}");
    all.extend(forms(&STANDARD.encode(pair.as_bytes())));
    add(all);
}

/// `text` with every form of every registered secret replaced by [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let matcher = {
        let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
        match &registry.matcher {
            Some(m) => Arc::clone(m),
            None => return Cow::Borrowed(text),
        }
    };
    if !matcher.is_match(text) {
        return Cow::Borrowed(text);
    }
    let masks = vec![MASK; matcher.patterns_len()];
    Cow::Owned(matcher.replace_all(text, &masks))
}

/// [`scrub`], for bytes that may not be UTF-8 (a log writer's buffer). Text that is
/// not UTF-8 is scrubbed in its lossy form: a secret is never let through because
/// the bytes around it were odd.
pub fn scrub_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    let text = String::from_utf8_lossy(bytes);
    match scrub(&text) {
        Cow::Borrowed(_) => Cow::Borrowed(bytes),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// The forms a secret is seen in, the value itself first: as written,
/// percent-encoded, and each of those JSON-escaped once and twice (a vendor's JSON
/// quoting a header, inside a message that is itself quoted).
fn forms(secret: &str) -> Vec<String> {
    if secret.chars().count() < MIN_SECRET_CHARS {
        return Vec::new();
    }
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    // `%20` rather than `+` for a space, as in a path or a query built by hand.
    let path_encoded = encoded.replace('+', "%20");
    let mut all = Vec::new();
    for base in [secret.to_string(), encoded, path_encoded] {
        let once = json_escaped(&base);
        let twice = json_escaped(&once);
        all.extend([base, once, twice]);
    }
    all
}

/// `s` as it reads inside a JSON string (without the quotes).
fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_string()
}

fn add(forms: Vec<String>) {
    if forms.is_empty() {
        return;
    }
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    let before = registry.needles.len();
    for form in forms {
        if !form.is_empty() && !registry.needles.contains(&form) {
            registry.needles.push(form);
        }
    }
    if registry.needles.len() == before {
        return;
    }
    // Leftmost-longest: where one form contains another, the whole of it goes.
    // Only a pattern set too large for the automaton fails to build; the old matcher
    // is then kept rather than none (never reached with a config's handful of secrets).
    if let Ok(m) = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&registry.needles)
    {
        registry.matcher = Some(Arc::new(m));
    }
}

/// Makes a panic's message go through the scrubber too (it goes to stderr, and may
/// quote a value that holds a vendor's echo).
pub fn scrub_panics() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("rosterd {}", scrub(&info.to_string()));
    }));
}

/// A `std::io::Write` that scrubs each write before passing it on: log lines are
/// formatted whole and written in one call, so a secret is never split across two.
pub struct ScrubWriter<W>(pub W);

impl<W: std::io::Write> std::io::Write for ScrubWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&scrub_bytes(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Bytes a [`StreamScrubber`] holds before scrubbing and passing them on.
const STREAM_CHUNK: usize = 64 * 1024;

/// A `std::io::Write` for a long document written in many small pieces (a plan of a
/// million operations): what passes through is scrubbed in chunks, never held whole.
///
/// A secret may straddle two writes, so each chunk keeps back its last
/// `longest form - 1` bytes (unless a match covers them) and scrubs them with the next
/// one: every occurrence of a form, wherever the writes cut it, lies whole inside one
/// scrubbed buffer. Call [`StreamScrubber::finish`] at the end: it scrubs and writes
/// what is held, flushes, and returns the first error (after which writes fail at
/// once, so a closed pipe stops the writer early).
pub struct StreamScrubber<W: std::io::Write> {
    inner: W,
    pending: Vec<u8>,
    failed: Option<std::io::Error>,
}

impl<W: std::io::Write> StreamScrubber<W> {
    pub fn new(inner: W) -> Self {
        StreamScrubber {
            inner,
            pending: Vec::with_capacity(STREAM_CHUNK),
            failed: None,
        }
    }

    /// Scrubs and writes what is pending; keeps back a tail a secret could start in
    /// unless `all`.
    fn drain(&mut self, all: bool) -> std::io::Result<()> {
        let matcher = {
            let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
            registry.matcher.clone()
        };
        let text = &self.pending[..];
        let keep = match &matcher {
            Some(m) if !all => m.max_pattern_len().saturating_sub(1),
            _ => 0,
        };
        let safe = text.len().saturating_sub(keep);
        let mut out = Vec::with_capacity(text.len());
        let mut done = 0;
        if let Some(m) = &matcher {
            for found in m.find_iter(text) {
                // A match starting in the kept tail is found again, whole, next time.
                if found.start() >= safe {
                    break;
                }
                out.extend_from_slice(&text[done..found.start()]);
                out.extend_from_slice(MASK.as_bytes());
                done = found.end();
            }
        }
        let cut = safe.max(done);
        out.extend_from_slice(&text[done..cut]);
        self.pending.drain(..cut);
        self.inner.write_all(&out)
    }

    /// Writes what is held back and flushes; the first error of the whole stream.
    pub fn finish(mut self) -> std::io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.drain(true)?;
        self.inner.flush()
    }

    fn fail(&mut self, e: std::io::Error) -> std::io::Error {
        let again = std::io::Error::new(e.kind(), e.to_string());
        self.failed = Some(e);
        again
    }
}

impl<W: std::io::Write> std::io::Write for StreamScrubber<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(std::io::Error::new(e.kind(), e.to_string()));
        }
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= STREAM_CHUNK {
            if let Err(e) = self.drain(false) {
                return Err(self.fail(e));
            }
        }
        Ok(buf.len())
    }

    /// Passes on only what is scrubbed already: the held-back tail waits for
    /// [`StreamScrubber::finish`].
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_scrubbed() {
        register("s3cr/t+key \"q\"-unit-1");
        let text = concat!(
            "raw s3cr/t+key \"q\"-unit-1, ",
            "url s3cr%2Ft%2Bkey+%22q%22-unit-1, ",
            "path s3cr%2Ft%2Bkey%20%22q%22-unit-1, ",
            "json s3cr/t+key \\\"q\\\"-unit-1, ",
            "bearer Bearer s3cr/t+key \"q\"-unit-1."
        );
        let out = scrub(text);
        assert!(!out.contains("s3cr"), "{out}");
        assert_eq!(out.matches(MASK).count(), 5, "{out}");
    }

    #[test]
    fn basic_auth_is_scrubbed_as_sent() {
        register_basic("rosterd", "basic-pass-unit-2");
        let sent = format!("Basic {}", STANDARD.encode(b"rosterd:basic-pass-unit-2"));
        assert_eq!(scrub(&sent), format!("Basic {MASK}"));
        assert_eq!(scrub("pw basic-pass-unit-2"), format!("pw {MASK}"));
    }

    #[test]
    fn text_without_secrets_is_borrowed_unchanged() {
        register("unit-3-never-in-text");
        assert!(matches!(
            scrub("nothing here"),
            Cow::Borrowed("nothing here")
        ));
    }

    #[test]
    fn short_values_are_not_registered() {
        register("abc");
        assert_eq!(scrub("abc abcd"), "abc abcd");
    }

    #[test]
    fn a_writer_scrubs_what_passes_through() {
        use std::io::Write;
        register("unit-4-writer-secret");
        let mut w = ScrubWriter(Vec::new());
        w.write_all(b"{\"error\":\"key unit-4-writer-secret\"}\n")
            .unwrap();
        assert_eq!(String::from_utf8(w.0).unwrap(), "{\"error\":\"key ***\"}\n");
    }

    #[test]
    fn a_stream_scrubs_secrets_cut_across_writes() {
        use std::io::Write;
        let secret = "unit-5-stream-secret";
        register(secret);
        // Secrets at every offset around the chunk boundary, written in pieces that
        // cut them anywhere.
        let mut text = String::new();
        while text.len() < 3 * STREAM_CHUNK {
            text.push_str("ab");
            text.push_str(secret);
            text.push_str(&"x".repeat(text.len() % 37));
        }
        let expected = scrub(&text).into_owned();
        for piece in [1, 7, 19, 4096, STREAM_CHUNK - 3] {
            let mut out = Vec::new();
            {
                let mut w = StreamScrubber::new(&mut out);
                for chunk in text.as_bytes().chunks(piece) {
                    w.write_all(chunk).unwrap();
                }
                w.finish().unwrap();
            }
            let out = String::from_utf8(out).unwrap();
            assert!(!out.contains(secret), "piece {piece}");
            assert_eq!(out, expected, "piece {piece}");
        }
    }

    #[test]
    fn a_stream_stops_at_its_first_error() {
        use std::io::Write;
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut w = StreamScrubber::new(Closed);
        let big = vec![b'a'; STREAM_CHUNK];
        assert!(w.write_all(&big).is_err());
        assert!(w.write_all(b"more").is_err());
        let e = w.finish().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    }
}

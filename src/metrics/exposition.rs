//! The two text formats `/metrics` answers in, chosen from the scraper's `Accept`
//! header: OpenMetrics 1.0 (what `prometheus_client` encodes) when the client asks for
//! `application/openmetrics-text`, and otherwise the classic Prometheus text format
//! 0.0.4, which `promtool check metrics`, older scrapers and plain `curl` read.
//!
//! The classic text is converted from the OpenMetrics text, not encoded separately, so
//! the two can never disagree on a sample. For the metric types rosterd registers
//! (counter, gauge, histogram) the formats differ only in the metadata: a counter's
//! family is named without `_total` in OpenMetrics and with it in 0.0.4 (else promtool
//! finds samples without HELP or TYPE and exits 3, "no help text"), `# UNIT` and
//! `# EOF` do not exist in 0.0.4, and OpenMetrics' `unknown` is 0.0.4's `untyped`.
//! rosterd attaches no exemplars and no `_created` samples, which 0.0.4 cannot carry.

/// Which text format a scrape is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Classic,
}

impl Exposition {
    /// OpenMetrics when `accept` lists `application/openmetrics-text` with a quality at
    /// least as high as any text/plain range it also lists (a Prometheus server sends
    /// OpenMetrics at q=1, text/plain at q=0.5); the classic format otherwise,
    /// including without an `Accept` header.
    pub fn negotiate(accept: Option<&str>) -> Exposition {
        let Some(accept) = accept else {
            return Exposition::Classic;
        };
        let (mut open, mut classic) = (0.0_f32, 0.0_f32);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, v)| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => open = open.max(q),
                "text/plain" | "text/*" | "*/*" => classic = classic.max(q),
                _ => {}
            }
        }
        if open > 0.0 && open >= classic {
            Exposition::OpenMetrics
        } else {
            Exposition::Classic
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Classic => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The classic (0.0.4) text of an OpenMetrics text as `prometheus_client` writes it.
pub fn to_classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // HELP comes before TYPE, and only TYPE says whether the family is a counter (and
    // so which name both lines must carry): HELP waits for its TYPE.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, help.take(), None);
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{family}_total"), "counter"),
                "info" => (format!("{family}_info"), "gauge"),
                "unknown" => (family.to_string(), "untyped"),
                other => (family.to_string(), other),
            };
            match help.take() {
                Some((own, text)) if own == family => {
                    flush_help(&mut out, Some((own, text)), Some(&name));
                }
                other => flush_help(&mut out, other, None),
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        flush_help(&mut out, help.take(), None);
        out.push_str(line);
        out.push('\n');
    }
    flush_help(&mut out, help, None);
    out
}

/// Writes a pending HELP line, under `name` when its TYPE renamed the family.
fn flush_help(out: &mut String, help: Option<(&str, &str)>, name: Option<&str>) {
    if let Some((own, text)) = help {
        out.push_str(&format!("# HELP {} {text}\n", name.unwrap_or(own)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_servers_get_openmetrics_and_everyone_else_the_classic_text() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        for (accept, want) in [
            (Some(prometheus), Exposition::OpenMetrics),
            (
                Some("application/openmetrics-text"),
                Exposition::OpenMetrics,
            ),
            (Some("text/plain;version=0.0.4"), Exposition::Classic),
            (Some("*/*"), Exposition::Classic),
            (
                Some("text/plain, application/openmetrics-text;q=0.2"),
                Exposition::Classic,
            ),
            (
                Some("application/openmetrics-text;q=0"),
                Exposition::Classic,
            ),
            (
                Some("APPLICATION/OpenMetrics-Text; q=0.9, text/plain; q=0.5"),
                Exposition::OpenMetrics,
            ),
            (Some("application/json"), Exposition::Classic),
            (None, Exposition::Classic),
        ] {
            assert_eq!(Exposition::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn counters_are_named_with_total_and_openmetrics_only_lines_go() {
        let open = "# HELP rosterd_passes Sync passes.\n# TYPE rosterd_passes counter\nrosterd_passes_total{outcome=\"ok\"} 2\n# HELP rosterd_wait_seconds Waits.\n# TYPE rosterd_wait_seconds gauge\n# UNIT rosterd_wait_seconds seconds\nrosterd_wait_seconds 1.5\n# HELP rosterd_d Durations.\n# TYPE rosterd_d histogram\nrosterd_d_sum 0.5\nrosterd_d_count 1\nrosterd_d_bucket{le=\"1.0\"} 1\nrosterd_d_bucket{le=\"+Inf\"} 1\n# EOF\n";
        assert_eq!(
            to_classic(open),
            "# HELP rosterd_passes_total Sync passes.\n# TYPE rosterd_passes_total counter\nrosterd_passes_total{outcome=\"ok\"} 2\n# HELP rosterd_wait_seconds Waits.\n# TYPE rosterd_wait_seconds gauge\nrosterd_wait_seconds 1.5\n# HELP rosterd_d Durations.\n# TYPE rosterd_d histogram\nrosterd_d_sum 0.5\nrosterd_d_count 1\nrosterd_d_bucket{le=\"1.0\"} 1\nrosterd_d_bucket{le=\"+Inf\"} 1\n"
        );
    }
}

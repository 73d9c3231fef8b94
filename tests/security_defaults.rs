//! Cheap guards for the security defaults reviewed in issue 4 (see
//! docs/reliability.md, "Security defaults"): they read the sources, so a
//! change that weakens a default fails here with the reason.
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file with `//` comments removed (doc comments describe
/// options such as `--addr 0.0.0.0:PORT`; only code sets defaults).
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).expect("source file");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let code = match line.find("//") {
                // Keep `//` inside a string literal such as "http://".
                Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
                _ => line,
            };
            (i + 1, code.to_string())
        })
        .collect()
}

#[test]
fn the_library_forbids_unsafe_code() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).expect("src/lib.rs");
    assert!(
        lib.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]"),
        "src/lib.rs must keep #![forbid(unsafe_code)]"
    );
}

/// Every socket address written in an example's code is on loopback: the
/// examples listen on 127.0.0.1 unless told otherwise with `--addr`.
#[test]
fn examples_default_to_loopback() {
    let mut files = Vec::new();
    rust_files(&root().join("examples"), &mut files);
    assert!(!files.is_empty(), "no examples found");
    let mut seen = 0;
    for file in &files {
        for (n, line) in code_lines(file) {
            for literal in line.split('"').skip(1).step_by(2) {
                if let Ok(addr) = literal.parse::<std::net::SocketAddr>() {
                    seen += 1;
                    assert!(
                        addr.ip().is_loopback(),
                        "{}:{n}: {addr} is not loopback; examples must bind 127.0.0.1 by default",
                        file.display()
                    );
                }
                if let Ok(ip) = literal.parse::<std::net::IpAddr>() {
                    assert!(
                        ip.is_loopback(),
                        "{}:{n}: {ip} is not loopback",
                        file.display()
                    );
                }
                assert!(
                    literal != "*",
                    "{}:{n}: the wildcard address in an example",
                    file.display()
                );
            }
        }
    }
    assert!(seen > 0, "no default address found in the examples");
}

/// Library logs at info level and above never format received or sent bytes:
/// no argument of `log::info!`, `warn!` or `error!` in `src/` names a payload
/// buffer. (Debug and trace may.)
#[test]
fn library_logs_above_debug_never_print_payload() {
    const PAYLOAD: [&str; 9] = [
        "data", "buf", "bytes", "payload", "packet", "rx", "tx", "input", "output",
    ];
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("source file");
        for level in ["log::info!(", "log::warn!(", "log::error!("] {
            for (at, _) in text.match_indices(level) {
                // The macro's arguments: up to the matching parenthesis.
                let args = &text[at + level.len()..];
                let mut depth = 1;
                let end = args
                    .char_indices()
                    .find(|&(_, c)| {
                        match c {
                            '(' => depth += 1,
                            ')' => depth -= 1,
                            _ => {}
                        }
                        depth == 0
                    })
                    .map_or(args.len(), |(i, _)| i);
                let args = &args[..end];
                checked += 1;
                for word in logged_names(args) {
                    assert!(
                        !PAYLOAD.contains(&word.as_str()),
                        "{}: {level}{args}) may print payload (`{word}`); log sizes, not bytes",
                        file.display()
                    );
                }
            }
        }
    }
    assert!(
        checked > 5,
        "only {checked} log calls found: is the scan broken?"
    );
}

/// The names a log call formats: identifiers in its code arguments and the
/// `{name}` captures of its string literals (the literal text is not code).
/// A size (`x.len()`, `x.capacity()`) is not payload and is left out.
fn logged_names(args: &str) -> Vec<String> {
    let mut cleaned = args.to_string();
    for size in [".len()", ".capacity()", ".is_empty()"] {
        while let Some(at) = cleaned.find(size) {
            let start = cleaned[..at]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            cleaned.replace_range(start..at + size.len(), "size");
        }
    }
    let args = cleaned.as_str();
    let mut names = Vec::new();
    let mut word = String::new();
    let mut in_string = false;
    let mut chars = args.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_string = false,
                '{' => {
                    let mut capture = String::new();
                    while let Some(&n) = chars.peek() {
                        if n.is_alphanumeric() || n == '_' {
                            capture.push(n);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    if !capture.is_empty() {
                        names.push(capture);
                    }
                }
                _ => {}
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            names.push(std::mem::take(&mut word));
        }
        if c == '"' {
            in_string = true;
        }
    }
    if !word.is_empty() {
        names.push(word);
    }
    names
}

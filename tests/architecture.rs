//! The layering of `src/` (see `docs/architecture.md`), checked on the source
//! files themselves:
//!
//! - the socket-free core (`src/core/`) never names mio, socket2, libc, rustix or a
//!   std socket type: it is driven through its `Transport` and `Dial` seams,
//!   so every rule in it stays testable without the OS;
//! - every file stays readable: no file under `src/` has more than 800 lines
//!   before its unit tests.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(rel)
}

/// The code of a file with comments dropped (a doc comment may mention mio).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let code = line.split("//").next().unwrap_or("").trim();
        (!code.is_empty()).then_some((i + 1, code))
    })
}

#[test]
fn the_socket_free_core_imports_no_os_crate() {
    let mut files = Vec::new();
    rust_files(&src("core"), &mut files);
    assert!(
        files.len() >= 5,
        "expected the core's files, found {files:?}"
    );
    let forbidden = [
        "mio",
        "socket2",
        "libc",
        "rustix",
        "TcpStream",
        "TcpListener",
        "UdpSocket",
        "sys::",
    ];
    let mut found = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("readable source");
        for (n, code) in code_lines(&text) {
            for word in forbidden {
                let hit = code.match_indices(word).any(|(at, _)| {
                    // Whole identifiers only: `mio` but not `semiotic`.
                    let before = code[..at].chars().next_back();
                    let after = code[at + word.len()..].chars().next();
                    let ident =
                        |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                    !ident(before) && (word.ends_with("::") || !ident(after))
                });
                if hit {
                    found.push(format!("{}:{n}: `{word}` in `{code}`", file.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the socket-free core must not touch the OS:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_above_would_catch_an_import() {
    // The detector itself must be able to fail.
    let sample = "use mio::net::TcpStream; // a comment naming socket2";
    let codes: Vec<_> = code_lines(sample).map(|(_, c)| c.to_owned()).collect();
    assert_eq!(codes, ["use mio::net::TcpStream;"]);
    assert!(codes[0].contains("mio"));
    let only_comment = "/// drives mio sockets";
    assert_eq!(code_lines(only_comment).count(), 0);
}

#[test]
fn every_source_file_stays_under_800_lines_of_code_before_its_tests() {
    let mut files = Vec::new();
    rust_files(&src(""), &mut files);
    assert!(
        files.len() >= 20,
        "expected every file of src/, found {files:?}"
    );
    let mut too_long = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("readable source");
        let before_tests = text
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .count();
        if before_tests > 800 {
            too_long.push(format!("{}: {before_tests} lines", file.display()));
        }
    }
    assert!(
        too_long.is_empty(),
        "split these files:\n{}",
        too_long.join("\n")
    );
}

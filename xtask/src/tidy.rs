//! The project's rules that no compiler lint sees, checked by `cargo xtask
//! lint` (and by this module's tests under `cargo test`):
//!
//! - **dependencies**: no crate depends (normal, dev or build) on a crate
//!   that the "must not depend on" column of ARCHITECTURE.md's crate table
//!   forbids. The table is read from ARCHITECTURE.md itself, so the
//!   document and the rule cannot drift apart; every workspace crate must
//!   have its row, and every row must name a workspace crate.
//! - **module docs**: every `*.rs` file under a crate's `src/`, `tests/`,
//!   `benches/` and `examples/` opens with a `//!` comment.
//! - **SAFETY comments**: every `unsafe` block (and `unsafe impl`) has a
//!   `// SAFETY:` comment just above it, as clippy's
//!   `undocumented_unsafe_blocks` asks, checked here on the text so a
//!   file the compiler does not see under the current features is checked
//!   too.
//!
//! The workspace's crates and their dependencies come from `cargo metadata
//! --no-deps`.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// A rule of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A dependency ARCHITECTURE.md's crate table forbids.
    ForbiddenDependency,
    /// ARCHITECTURE.md's crate table and the workspace disagree.
    CrateTable,
    /// A source file without its `//!` module doc.
    ModuleDoc,
    /// An `unsafe` block or impl without a `// SAFETY:` comment above it.
    UnsafeWithoutSafety,
}

impl Rule {
    fn as_str(self) -> &'static str {
        match self {
            Rule::ForbiddenDependency => "forbidden dependency",
            Rule::CrateTable => "crate table",
            Rule::ModuleDoc => "missing module doc",
            Rule::UnsafeWithoutSafety => "unsafe without SAFETY",
        }
    }
}

/// One broken rule: where (a file, relative to the workspace root, with a
/// line when there is one), which rule, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// `path` or `path:line`, relative to the workspace root.
    pub place: String,
    /// What is wrong and how to fix it.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.place, self.rule.as_str(), self.detail)
    }
}

/// `cargo xtask lint`'s part: checks the workspace, prints each violation
/// on its own line, and fails when there is any.
pub fn main() -> Result<()> {
    let root = crate::workspace_root();
    let violations = check(&root)?;
    for v in &violations {
        eprintln!("tidy: {v}");
    }
    if !violations.is_empty() {
        bail!(
            "tidy: {} rule violation(s) (rules: xtask/src/tidy.rs)",
            violations.len()
        );
    }
    println!("tidy: dependency table, module docs and SAFETY comments hold");
    Ok(())
}

/// Every violation in the workspace at `root` (its `Cargo.toml` and
/// `ARCHITECTURE.md`).
pub fn check(root: &Path) -> Result<Vec<Violation>> {
    let metadata = cargo_metadata(root)?;
    let architecture_path = root.join("ARCHITECTURE.md");
    let architecture = std::fs::read_to_string(&architecture_path)
        .with_context(|| format!("reading {}", architecture_path.display()))?;
    let crates = workspace_crates(&metadata, root)?;
    let mut violations = dependency_violations(&architecture, &crates)?;
    for krate in &crates {
        for file in source_files(root, &krate.dir)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let rel = relative(root, &file);
            violations.extend(module_doc_violation(&rel, &text));
            violations.extend(unsafe_violations(&rel, &text));
        }
    }
    Ok(violations)
}

fn cargo_metadata(root: &Path) -> Result<Value> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata in {} failed ({}): {}",
            root.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("parsing cargo metadata's output")
}

/// A workspace crate: its package name, its directory relative to the
/// root ("" for the root package), and its dependencies' package names
/// with their kind (`normal`, `dev`, `build`).
#[derive(Debug)]
struct Crate {
    name: String,
    dir: String,
    deps: Vec<(String, String)>,
}

fn workspace_crates(metadata: &Value, root: &Path) -> Result<Vec<Crate>> {
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata without packages")?;
    let mut crates = Vec::new();
    for p in packages {
        let name = p["name"].as_str().context("a package without a name")?;
        let manifest = Path::new(p["manifest_path"].as_str().context("no manifest_path")?);
        let dir = relative(root, manifest.parent().unwrap_or(root));
        let deps = p["dependencies"]
            .as_array()
            .map(|deps| {
                deps.iter()
                    .filter_map(|d| {
                        let dep = d["name"].as_str()?.to_string();
                        let kind = d["kind"].as_str().unwrap_or("normal").to_string();
                        Some((dep, kind))
                    })
                    .collect()
            })
            .unwrap_or_default();
        crates.push(Crate {
            name: name.to_string(),
            dir,
            deps,
        });
    }
    Ok(crates)
}

/// One row of ARCHITECTURE.md's crate table: the crate as the table names
/// it (`runtime/` → `runtime`, `boxwatch`) and the crates it must not
/// depend on.
#[derive(Debug, PartialEq)]
struct Row {
    name: String,
    forbidden: Vec<Forbidden>,
}

/// The rows of the table under `## Crates` whose header has a "must not
/// depend on" column.
fn crate_table(architecture: &str) -> Result<Vec<Row>> {
    let section = architecture
        .split("\n## ")
        .find(|s| s.starts_with("Crates"))
        .context("ARCHITECTURE.md has no `## Crates` section")?;
    let mut lines = section.lines().filter(|l| l.trim_start().starts_with('|'));
    let header = lines
        .next()
        .context("ARCHITECTURE.md's `## Crates` section has no table")?;
    let column = cells(header)
        .iter()
        .position(|c| c.contains("must not depend on"))
        .context("ARCHITECTURE.md's crate table has no \"must not depend on\" column")?;
    let mut rows = Vec::new();
    for line in lines {
        let cells = cells(line);
        if cells.iter().all(|c| c.chars().all(|ch| "-: ".contains(ch))) {
            continue; // the |---|---| separator
        }
        let name = cells[0]
            .split('`')
            .nth(1)
            .with_context(|| format!("crate table row without a `crate` name: {line}"))?
            .trim_end_matches('/')
            .to_string();
        let forbidden = cells
            .get(column)
            .map(|c| forbidden_names(c))
            .unwrap_or_default();
        rows.push(Row { name, forbidden });
    }
    Ok(rows)
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

/// A crate a row forbids; `dev_allowed` when its remark says "but as a
/// dev-dependency" (a test may check facts against it).
#[derive(Debug, PartialEq)]
struct Forbidden {
    name: String,
    dev_allowed: bool,
}

/// `**runtime** (a bug shared...)`, `probes, scenarios` → the names; `—`
/// → none. Parenthesized remarks are dropped, but a remark "but as a
/// dev-dependency" allows dev-dependency edges to the name before it.
fn forbidden_names(cell: &str) -> Vec<Forbidden> {
    let mut out: Vec<Forbidden> = Vec::new();
    let mut name = String::new();
    let mut remark = String::new();
    let mut depth = 0u32;
    let mut flush = |name: &mut String, remark: &mut String| {
        let n = name.trim().trim_end_matches('/').to_string();
        if !n.is_empty() && !matches!(n.as_str(), "—" | "-" | "none") {
            out.push(Forbidden {
                name: n,
                dev_allowed: remark.contains("but as a dev-dependency"),
            });
        }
        name.clear();
        remark.clear();
    };
    for ch in cell.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '*' | '`' => {}
            ',' if depth == 0 => flush(&mut name, &mut remark),
            _ if depth == 0 => name.push(ch),
            _ => remark.push(ch),
        }
    }
    flush(&mut name, &mut remark);
    out
}

/// The workspace crate a table name stands for: its directory (`runtime`),
/// its package name (`boxwatch`), or `boxwatch-<name>`.
fn resolve<'a>(crates: &'a [Crate], name: &str) -> Option<&'a Crate> {
    crates
        .iter()
        .find(|c| c.dir == name || c.name == name || c.name == format!("boxwatch-{name}"))
}

fn manifest_of(krate: &Crate) -> String {
    if krate.dir.is_empty() {
        "Cargo.toml".into()
    } else {
        format!("{}/Cargo.toml", krate.dir)
    }
}

fn dependency_violations(architecture: &str, crates: &[Crate]) -> Result<Vec<Violation>> {
    let rows = crate_table(architecture)?;
    let mut violations = Vec::new();
    for row in &rows {
        for name in std::iter::once(&row.name).chain(row.forbidden.iter().map(|f| &f.name)) {
            if resolve(crates, name).is_none() {
                violations.push(Violation {
                    rule: Rule::CrateTable,
                    place: "ARCHITECTURE.md".into(),
                    detail: format!(
                        "the crate table names `{name}`, which is no workspace crate: \
                         correct the table"
                    ),
                });
            }
        }
    }
    for krate in crates {
        let Some(row) = rows
            .iter()
            .find(|r| resolve(crates, &r.name).is_some_and(|c| c.name == krate.name))
        else {
            violations.push(Violation {
                rule: Rule::CrateTable,
                place: manifest_of(krate),
                detail: format!(
                    "crate `{}` has no row in ARCHITECTURE.md's crate table: add one \
                     saying what it is and what it must not depend on",
                    krate.name
                ),
            });
            continue;
        };
        for forbidden in &row.forbidden {
            let Some(target) = resolve(crates, &forbidden.name) else {
                continue; // reported above
            };
            let edges = krate.deps.iter().filter(|(d, kind)| {
                *d == target.name && !(forbidden.dev_allowed && kind.as_str() == "dev")
            });
            for (dep, kind) in edges {
                violations.push(Violation {
                    rule: Rule::ForbiddenDependency,
                    place: manifest_of(krate),
                    detail: format!(
                        "`{}` depends on `{dep}` ({kind} dependency), which ARCHITECTURE.md's \
                         crate table forbids (`{}` must not depend on {})",
                        krate.name, row.name, forbidden.name
                    ),
                });
            }
        }
    }
    Ok(violations)
}

/// The Rust files of a crate: under `src/`, `tests/`, `benches/`,
/// `examples/` of its directory, and its `build.rs`; sorted.
fn source_files(root: &Path, dir: &str) -> Result<Vec<PathBuf>> {
    let base = root.join(dir);
    let mut files = Vec::new();
    for sub in ["src", "tests", "benches", "examples"] {
        walk(&base.join(sub), &mut files)?;
    }
    let build = base.join("build.rs");
    if build.is_file() {
        files.push(build);
    }
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn module_doc_violation(file: &str, text: &str) -> Option<Violation> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    if first.is_some_and(|l| l.starts_with("//!") || l.starts_with("/*!")) {
        return None;
    }
    Some(Violation {
        rule: Rule::ModuleDoc,
        place: file.into(),
        detail: "the file does not open with a `//!` comment saying what the module is for".into(),
    })
}

/// One line of a Rust file split into its code (string and char literals
/// kept as a bare `"`) and its comment text.
#[derive(Debug, Default)]
struct Line {
    code: String,
    comment: String,
}

/// Splits Rust source into lines of code and comment, so that `unsafe` in
/// a string or a comment is not taken for code. Handles nested block
/// comments, (raw, byte) string literals, char literals and lifetimes.
fn lex(text: &str) -> Vec<Line> {
    let chars: Vec<char> = text.chars().collect();
    let mut lines = vec![Line::default()];
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            lines.push(Line::default());
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                lines.last_mut().unwrap().comment.push(chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else if chars[i] == '\n' {
                    lines.push(Line::default());
                    i += 1;
                } else {
                    lines.last_mut().unwrap().comment.push(chars[i]);
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&chars, i + 1, None, &mut lines);
        } else if c == 'r'
            && (i == 0
                || !ident(chars[i - 1])
                || (chars[i - 1] == 'b' && (i < 2 || !ident(chars[i - 2]))))
            && matches!(next, Some('"') | Some('#'))
        {
            let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
            if chars.get(i + 1 + hashes) == Some(&'"') {
                i = skip_string(&chars, i + 2 + hashes, Some(hashes), &mut lines);
            } else {
                lines.last_mut().unwrap().code.push(c); // r#ident
                i += 1;
            }
        } else if c == '\'' && next == Some('\\') {
            // An escaped char literal: '\n', '\'', '\u{..}'.
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            lines.last_mut().unwrap().code.push('"');
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            lines.last_mut().unwrap().code.push('"');
            i += 3;
        } else {
            lines.last_mut().unwrap().code.push(c);
            i += 1;
        }
    }
    lines
}

/// Skips a string literal's body from `i` (just after its opening quote)
/// to just after its closing quote (followed by `raw` `#`s for a raw
/// string, which has no escapes). The string stands as `"` in the code of
/// each line it spans.
fn skip_string(chars: &[char], mut i: usize, raw: Option<usize>, lines: &mut Vec<Line>) -> usize {
    let hashes = raw.unwrap_or(0);
    lines.last_mut().unwrap().code.push('"');
    while i < chars.len() {
        match chars[i] {
            // An escape; a backslash before a newline continues the string
            // on the next line, which is counted below.
            '\\' if raw.is_none() => {
                i += if chars.get(i + 1) == Some(&'\n') {
                    1
                } else {
                    2
                }
            }
            '"' if chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes =>
            {
                return i + 1 + hashes;
            }
            '\n' => {
                lines.push(Line::default());
                lines.last_mut().unwrap().code.push('"');
                i += 1;
            }
            _ => i += 1,
        }
    }
    i
}

/// Every `unsafe {` and `unsafe impl` of `text` without a `// SAFETY:`
/// comment in the comment lines just above it (or above the start of the
/// statement it is part of).
fn unsafe_violations(file: &str, text: &str) -> Vec<Violation> {
    let lines = lex(text);
    let mut violations = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if !has_unsafe_block(&line.code) || has_safety_above(&lines, n) {
            continue;
        }
        violations.push(Violation {
            rule: Rule::UnsafeWithoutSafety,
            place: format!("{file}:{}", n + 1),
            detail: "an `unsafe` block without a `// SAFETY:` comment just above it \
                     saying why it is sound"
                .into(),
        });
    }
    violations
}

/// Whether the code has the keyword `unsafe` followed by `{` or `impl`.
fn has_unsafe_block(code: &str) -> bool {
    let bytes = code.as_bytes();
    code.match_indices("unsafe").any(|(at, _)| {
        let before_ok =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let rest = code[at + "unsafe".len()..].trim_start();
        before_ok && (rest.starts_with('{') || rest.starts_with("impl"))
    })
}

fn has_safety_above(lines: &[Line], n: usize) -> bool {
    for line in lines[..n].iter().rev() {
        let code = line.code.trim();
        if code.is_empty() {
            if line.comment.is_empty() {
                return false; // a blank line
            }
            if line.comment.contains("SAFETY:") {
                return true;
            }
            continue;
        }
        // A code line: the block is part of a statement that started above
        // unless this line ends one (or opens or closes a block).
        if code.ends_with([';', '{', '}', ',']) {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
# Architecture

## Crates

| crate | what it is | must not depend on |
|---|---|---|
| `runtime/` | spawns containers | probes |
| `probes/` | the judge's eyes | **runtime** (a bug shared with the runtime would pass itself) |
";

    /// A workspace in a temporary directory: `runtime` and `probes`
    /// (named `boxwatch-<dir>`), each with a documented `src/lib.rs`, and
    /// ARCHITECTURE.md with [`TABLE`]; `files` are written over it.
    fn fixture(probes_deps: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "Cargo.toml",
            "[workspace]\nmembers = [\"runtime\", \"probes\"]\nresolver = \"2\"\n",
        );
        for (krate, deps) in [("runtime", ""), ("probes", probes_deps)] {
            write(
                &format!("{krate}/Cargo.toml"),
                &format!(
                    "[package]\nname = \"boxwatch-{krate}\"\nversion = \"0.1.0\"\n\
                     edition = \"2021\"\n\n[dependencies]\n{deps}"
                ),
            );
            write(&format!("{krate}/src/lib.rs"), "//! A crate.\n");
        }
        write("ARCHITECTURE.md", TABLE);
        for (path, text) in files {
            write(path, text);
        }
        dir
    }

    #[test]
    fn the_workspace_keeps_its_rules() {
        let violations = check(&crate::workspace_root()).unwrap();
        let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert!(listed.is_empty(), "{}", listed.join("\n"));
    }

    #[test]
    fn the_real_table_is_read() {
        let text =
            std::fs::read_to_string(crate::workspace_root().join("ARCHITECTURE.md")).unwrap();
        let rows = crate_table(&text).unwrap();
        let probes = rows.iter().find(|r| r.name == "probes").unwrap();
        let names = |r: &Row| {
            r.forbidden
                .iter()
                .map(|f| f.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(probes), ["runtime"]);
        let runtime = rows.iter().find(|r| r.name == "runtime").unwrap();
        assert!(names(runtime).contains(&"scenarios".to_string()));
        let xtask = rows.iter().find(|r| r.name == "xtask").unwrap();
        assert_eq!(
            xtask.forbidden,
            [Forbidden {
                name: "exporter".into(),
                dev_allowed: true
            }]
        );
        assert!(!probes.forbidden[0].dev_allowed);
        assert!(rows
            .iter()
            .any(|r| r.name == "boxwatch" && r.forbidden.is_empty()));
    }

    #[test]
    fn a_forbidden_dependency_is_named_with_its_crates() {
        let ws = fixture(
            "runtime = { path = \"../runtime\", package = \"boxwatch-runtime\" }\n",
            &[],
        );
        let violations = check(ws.path()).unwrap();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].rule, Rule::ForbiddenDependency);
        assert_eq!(
            violations[0].to_string(),
            "probes/Cargo.toml: forbidden dependency: `boxwatch-probes` depends on \
             `boxwatch-runtime` (normal dependency), which ARCHITECTURE.md's crate table \
             forbids (`probes` must not depend on runtime)"
        );
        // The same workspace without the edge holds.
        assert!(check(fixture("", &[]).path()).unwrap().is_empty());
    }

    #[test]
    fn a_crate_missing_from_the_table_is_named() {
        let ws = fixture(
            "",
            &[(
                "ARCHITECTURE.md",
                &TABLE.replace("| `probes/`", "| `judge/`"),
            )],
        );
        let listed: Vec<String> = check(ws.path())
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            listed,
            [
                "ARCHITECTURE.md: crate table: the crate table names `judge`, which is no \
                 workspace crate: correct the table",
                "probes/Cargo.toml: crate table: crate `boxwatch-probes` has no row in \
                 ARCHITECTURE.md's crate table: add one saying what it is and what it must \
                 not depend on",
            ]
        );
    }

    #[test]
    fn a_file_without_module_doc_is_named() {
        let ws = fixture(
            "",
            &[(
                "probes/src/host.rs",
                "// A plain comment is no module doc.\npub fn f() {}\n",
            )],
        );
        let violations = check(ws.path()).unwrap();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].rule, Rule::ModuleDoc);
        assert_eq!(
            violations[0].to_string(),
            "probes/src/host.rs: missing module doc: the file does not open with a `//!` \
             comment saying what the module is for"
        );
    }

    #[test]
    fn an_unsafe_block_without_safety_is_named() {
        let source = "//! Raw calls.\n\
                      \n\
                      pub fn pid() -> i32 {\n\
                      \x20   // The caller's PID.\n\
                      \x20   unsafe { libc::getpid() }\n\
                      }\n";
        let ws = fixture("", &[("runtime/src/sys.rs", source)]);
        let violations = check(ws.path()).unwrap();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].rule, Rule::UnsafeWithoutSafety);
        assert_eq!(
            violations[0].to_string(),
            "runtime/src/sys.rs:5: unsafe without SAFETY: an `unsafe` block without a \
             `// SAFETY:` comment just above it saying why it is sound"
        );
        // With its SAFETY comment it holds.
        let fixed = source.replace("// The caller's PID.", "// SAFETY: getpid cannot fail.");
        let ws = fixture("", &[("runtime/src/sys.rs", &fixed)]);
        assert!(check(ws.path()).unwrap().is_empty());
    }

    #[test]
    fn safety_comments_are_found_where_clippy_finds_them() {
        let ok = [
            "// SAFETY: fine.\nlet x = unsafe { f() };",
            "// SAFETY: fine,\n// on two lines.\nunsafe { f() }",
            "// SAFETY: fine.\nlet x = g(\n    unsafe { f() },\n);",
            "match c {\n    // SAFETY: fine.\n    A => unsafe { f() },\n}",
            "// SAFETY: fine.\nunsafe impl Send for T {}",
            "let s = \"unsafe { not code }\";",
            "let s = r#\"unsafe { not code }\"#;",
            "/* unsafe { not code } */",
            "fn f<'a>(x: &'a str) -> char { 'u' }",
            "let c = '\"'; // unsafe { not code }",
        ];
        for text in ok {
            assert!(unsafe_violations("f.rs", text).is_empty(), "{text}");
        }
        let bad = [
            "let x = unsafe { f() };",
            "// SAFETY: for the one above.\nlet a = 1;\nlet x = unsafe { f() };",
            "// SAFETY: fine.\n\nunsafe { f() }",
            "match c {\n    // SAFETY: fine.\n    A => unsafe { f() },\n    B => unsafe { g() },\n}",
            "unsafe impl Send for T {}",
            "let s = \"a string\"; unsafe { f() }",
        ];
        for text in bad {
            assert_eq!(unsafe_violations("f.rs", text).len(), 1, "{text}");
        }
    }

    #[test]
    fn module_docs_may_follow_blank_lines_only() {
        assert!(module_doc_violation("f.rs", "\n//! Doc.\n").is_none());
        assert!(module_doc_violation("f.rs", "/*! Doc. */\n").is_none());
        assert!(module_doc_violation("f.rs", "/// An item doc.\nfn f() {}\n").is_some());
        assert!(module_doc_violation("f.rs", "").is_some());
    }
}

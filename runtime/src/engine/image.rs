//! The image the engine backends run: boxwatch's own binary (debug
//! sections stripped when `strip` is there) at [`CONTAINER_EXE`], the
//! shared libraries it loads (as `ldd` lists them), and a static busybox
//! (`/bin/busybox`, `/bin/sh`). Nothing comes from a registry and nothing
//! of the host's `/usr` is shared: the engine copies the layer into each
//! container like any image.
//!
//! The image is written as a tar straight into `<engine> import -` and
//! tagged `boxwatch-engine:<key>` (Podman: `localhost/boxwatch-engine:
//! <key>`), where the key changes with the boxwatch binary, busybox and the
//! libraries; it carries the label `boxwatch.image=1`. It stays in the
//! engine's image store as a cache, and older `boxwatch-engine` images are
//! removed when a new one is built (one that a container still uses stays).

use super::{Engine, EngineKind};
use crate::error::{Error, Result};
use crate::rootfs::CONTAINER_EXE;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository name of boxwatch's images.
pub const REPOSITORY: &str = "boxwatch-engine";
/// The label every boxwatch image carries.
pub const IMAGE_LABEL: &str = "boxwatch.image";

/// The shared libraries in `ldd`'s output: `name => /path (addr)` and the
/// loader's `/path (addr)`; the vDSO and unresolved names are skipped.
pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        let path = path.split_whitespace().next().unwrap_or("");
        if path.starts_with('/') && !libs.iter().any(|l: &PathBuf| l == Path::new(path)) {
            libs.push(PathBuf::from(path));
        }
    }
    libs
}

/// The libraries `binary` loads (none for a static binary).
fn libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .stdin(Stdio::null())
        .output()
        .map_err(Error::io("running ldd on the boxwatch binary"))?;
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// A static busybox: `/bin/busybox` (Debian's busybox-static) or the first
/// in PATH.
fn busybox(engine: &str) -> Result<PathBuf> {
    let found = [PathBuf::from("/bin/busybox")]
        .into_iter()
        .chain(crate::find_in_path("busybox"))
        .find(|p| p.is_file());
    let Some(path) = found else {
        return Err(Error::EngineRefused {
            engine: engine.into(),
            what: "its image needs a static busybox, and none was found".into(),
            fix: "install busybox-static (apt-get install busybox-static)".into(),
        });
    };
    if !libraries(&path)?.is_empty() {
        return Err(Error::EngineRefused {
            engine: engine.into(),
            what: format!(
                "{} is linked dynamically; the image holds a static busybox only",
                path.display()
            ),
            fix: "install busybox-static (apt-get install busybox-static)".into(),
        });
    }
    Ok(path)
}

/// What the image is made of.
#[derive(Debug)]
struct Contents {
    exe: PathBuf,
    busybox: PathBuf,
    libs: Vec<PathBuf>,
}

impl Contents {
    fn find(engine: &str, exe: &Path) -> Result<Contents> {
        Ok(Contents {
            exe: exe.to_path_buf(),
            busybox: busybox(engine)?,
            libs: libraries(exe)?,
        })
    }

    /// Changes whenever a file of the image does (size, mtime, inode).
    fn key(&self) -> String {
        let mut h = DefaultHasher::new();
        for p in std::iter::once(&self.exe)
            .chain(std::iter::once(&self.busybox))
            .chain(&self.libs)
        {
            p.hash(&mut h);
            if let Ok(m) = std::fs::metadata(p) {
                (m.len(), m.mtime(), m.mtime_nsec(), m.ino()).hash(&mut h);
            }
        }
        format!("{:016x}", h.finish())
    }
}

/// The image reference for `key` in `kind`'s store.
pub fn reference(kind: EngineKind, key: &str) -> String {
    match kind {
        EngineKind::Docker => format!("{REPOSITORY}:{key}"),
        EngineKind::Podman => format!("localhost/{REPOSITORY}:{key}"),
    }
}

/// The image for `exe`: reused when the engine has it, else built.
/// `scratch` is a directory for the stripped binary (removed after).
pub(super) fn ensure(engine: &Engine, exe: &Path, scratch: &Path) -> Result<String> {
    let contents = Contents::find(engine.kind.name(), exe)?;
    let image = reference(engine.kind, &contents.key());
    if engine.quiet(&["image", "inspect", "--format", "{{.Id}}", &image]) {
        return Ok(image);
    }
    let t0 = std::time::Instant::now();
    std::fs::create_dir_all(scratch).map_err(Error::io("making the image scratch directory"))?;
    let stripped = scratch.join("boxwatch");
    let binary = match Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&stripped)
        .arg(exe)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => stripped.clone(),
        _ => exe.to_path_buf(),
    };
    let built = import(engine, &contents, &binary, &image);
    let _ = std::fs::remove_file(&stripped);
    let _ = std::fs::remove_dir(scratch);
    built?;
    tracing::info!(
        "built the {} image {image} in {:.1} s",
        engine.kind.name(),
        t0.elapsed().as_secs_f64()
    );
    remove_older(engine, &image);
    Ok(image)
}

/// `<engine> import` of the tar, written to its stdin.
fn import(engine: &Engine, c: &Contents, binary: &Path, image: &str) -> Result<()> {
    let mut child = engine
        .command()
        .args([
            "import",
            "--change",
            &format!("LABEL {IMAGE_LABEL}=1"),
            "-",
            image,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| engine.error("import", image, format!("could not run it: {e}")))?;
    let stdin = child.stdin.take().expect("piped");
    let written = write_tar(stdin, c, binary);
    let out = child
        .wait_with_output()
        .map_err(|e| engine.error("import", image, e.to_string()))?;
    if !out.status.success() {
        return Err(engine.error(
            "import",
            image,
            format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    written.map_err(Error::io("writing the image's tar"))
}

fn write_tar(out: impl Write, c: &Contents, binary: &Path) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(true);
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut dir = |tar: &mut tar::Builder<_>, d: &Path, mode: u32| -> std::io::Result<()> {
        for a in d.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if a.as_os_str().is_empty() || dirs.iter().any(|x| x == a) {
                continue;
            }
            dirs.push(a.to_path_buf());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(if a == d { mode } else { 0o755 });
            h.set_size(0);
            h.set_mtime(0);
            tar.append_data(&mut h, a, std::io::empty())?;
        }
        Ok(())
    };
    for d in ["proc", "sys", "dev", "etc", "root", "bin"] {
        dir(&mut tar, Path::new(d), 0o755)?;
    }
    dir(&mut tar, Path::new("tmp"), 0o1777)?;
    let exe_in = Path::new(CONTAINER_EXE.trim_start_matches('/'));
    dir(&mut tar, exe_in.parent().expect("a directory"), 0o755)?;
    tar.append_path_with_name(binary, exe_in)?;
    tar.append_path_with_name(&c.busybox, "bin/busybox")?;
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_mtime(0);
    tar.append_link(&mut h, "bin/sh", "busybox")?;
    for lib in &c.libs {
        let rel = lib.strip_prefix("/").unwrap_or(lib);
        if let Some(parent) = rel.parent() {
            dir(&mut tar, parent, 0o755)?;
        }
        tar.append_path_with_name(lib, rel)?;
    }
    tar.into_inner()?.flush()
}

/// Removes the other `boxwatch-engine` images (best effort: one a
/// container still uses stays).
fn remove_older(engine: &Engine, keep: &str) {
    let Some(list) = engine.output(&[
        "images",
        "--filter",
        &format!("label={IMAGE_LABEL}"),
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]) else {
        return;
    };
    for old in list.lines().map(str::trim) {
        if !old.is_empty() && old != keep && old.contains(REPOSITORY) {
            let _ = engine.quiet(&["rmi", old]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_the_libraries_and_the_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f72)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f72)\n\
            \tlibmissing.so => not found\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f72)\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
        assert!(parse_ldd("\tstatically linked\n").is_empty());
    }

    #[test]
    fn references_are_per_engine() {
        assert_eq!(reference(EngineKind::Docker, "ab"), "boxwatch-engine:ab");
        assert_eq!(
            reference(EngineKind::Podman, "ab"),
            "localhost/boxwatch-engine:ab"
        );
    }
}

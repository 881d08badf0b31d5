//! Debian kernels for the VMs: the newest `linux-image-<series>` package,
//! fetched with `apt-get download`, its vmlinuz unpacked (no install), cached
//! under `target/vm/kernels/`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A kernel to boot: a Debian series with its flavour ("6.1", "6.12",
/// "6.12-rt", "6.1-cloud") or a vmlinuz/bzImage file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelChoice {
    Series(String),
    Flavoured(String, Flavour),
    File(PathBuf),
}

/// Debian's kernel flavours besides the generic one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// PREEMPT_RT: the real-time scheduler, where CFS bandwidth behaves
    /// differently.
    Rt,
    /// The cloud flavour: fewer drivers, for virtual machines.
    Cloud,
}

impl Flavour {
    fn as_str(self) -> &'static str {
        match self {
            Flavour::Rt => "rt",
            Flavour::Cloud => "cloud",
        }
    }
}

fn is_series(s: &str) -> bool {
    s.split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl std::str::FromStr for KernelChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.contains('/') {
            return Ok(KernelChoice::File(PathBuf::from(s)));
        }
        let (series, flavour) = match s.split_once('-') {
            Some((series, "rt")) => (series, Some(Flavour::Rt)),
            Some((series, "cloud")) => (series, Some(Flavour::Cloud)),
            Some(_) => ("", None),
            None => (s, None),
        };
        if !is_series(series) {
            return Err(format!(
                "{s:?}: expected a Debian kernel series such as 6.1 or 6.12, a flavour of one \
                 (6.12-rt, 6.12-cloud, 6.1-rt, 6.1-cloud), or a path to a vmlinuz (./bzImage)"
            ));
        }
        Ok(match flavour {
            None => KernelChoice::Series(series.to_string()),
            Some(f) => KernelChoice::Flavoured(series.to_string(), f),
        })
    }
}

impl std::fmt::Display for KernelChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelChoice::Series(s) => f.write_str(s),
            KernelChoice::Flavoured(s, fl) => write!(f, "{s}-{}", fl.as_str()),
            KernelChoice::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl KernelChoice {
    /// What a matrix column is named by: the choice, or an image's file name.
    pub fn name(&self) -> String {
        match self {
            KernelChoice::File(p) => p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            other => other.to_string(),
        }
    }
}

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// What the report calls it: the package's kernel release, or the file name.
    pub label: String,
    pub vmlinuz: PathBuf,
}

/// Finds or fetches the kernel.
pub fn obtain(choice: &KernelChoice, cache: &Path) -> Result<Kernel> {
    match choice {
        KernelChoice::File(p) => {
            anyhow::ensure!(p.is_file(), "kernel image {} does not exist", p.display());
            Ok(Kernel {
                label: p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                vmlinuz: p.clone(),
            })
        }
        KernelChoice::Series(series) => fetch(&newest_package(series, None)?, cache),
        KernelChoice::Flavoured(series, f) => fetch(&newest_package(series, Some(*f))?, cache),
    }
}

/// The newest unsigned amd64 image package of a series and flavour.
fn newest_package(series: &str, flavour: Option<Flavour>) -> Result<String> {
    let out = Command::new("apt-cache")
        .args(["pkgnames", &format!("linux-image-{series}")])
        .output()
        .context("running apt-cache (is this a Debian machine?)")?;
    let names = String::from_utf8_lossy(&out.stdout);
    let best = pick_newest(series, flavour, names.lines());
    let infix = flavour
        .map(|f| format!("{}-", f.as_str()))
        .unwrap_or_default();
    best.with_context(|| {
        format!(
            "no Debian package linux-image-{series}.*-{infix}amd64-unsigned is known to apt \
             (6.12 comes from bookworm-backports or bookworm-security): run `apt-get update`, \
             check `apt-cache policy 'linux-image-{series}*'`, or pass --kernel PATH-TO-VMLINUZ"
        )
    })
}

/// Picks the highest version among `-amd64-unsigned` packages of a series
/// and flavour: 6.1 -> linux-image-6.1.0-N-amd64-unsigned, 6.12-rt ->
/// linux-image-6.12.N+deb12-rt-amd64-unsigned; the generic flavour skips
/// the rt and cloud ones.
pub fn pick_newest<'a>(
    series: &str,
    flavour: Option<Flavour>,
    names: impl Iterator<Item = &'a str>,
) -> Option<String> {
    let prefix = format!("linux-image-{series}.");
    let suffix = match flavour {
        None => "-amd64-unsigned".to_string(),
        Some(f) => format!("-{}-amd64-unsigned", f.as_str()),
    };
    names
        .filter(|n| n.starts_with(&prefix) && n.ends_with(&suffix))
        .filter(|n| flavour.is_some() || (!n.contains("-rt-") && !n.contains("-cloud-")))
        .max_by_key(|n| version_key(&n[prefix.len()..]))
        .map(String::from)
}

/// The numbers in a version string, for ordering: "0-56-amd64" -> [0, 56].
fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn fetch(package: &str, cache: &Path) -> Result<Kernel> {
    let dir = cache.join(package);
    let label = package
        .trim_start_matches("linux-image-")
        .trim_end_matches("-unsigned")
        .to_string();
    let vmlinuz = dir.join(format!("vmlinuz-{label}"));
    if vmlinuz.is_file() {
        return Ok(Kernel { label, vmlinuz });
    }
    std::fs::create_dir_all(&dir)?;
    eprintln!("vm: fetching {package} with apt-get download");
    let status = Command::new("apt-get")
        .args(["download", "-q", "-o", "APT::Sandbox::User=root", package])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .status()
        .context("running apt-get download")?;
    anyhow::ensure!(
        status.success(),
        "apt-get download {package} failed ({status})"
    );
    let deb = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    extract_vmlinuz(&deb, &dir)?;
    std::fs::remove_file(&deb)?;
    let found = dir.join("boot").join(format!("vmlinuz-{label}"));
    if !found.is_file() {
        bail!("{} holds no boot/vmlinuz-{label}", deb.display());
    }
    std::fs::rename(&found, &vmlinuz)?;
    let _ = std::fs::remove_dir(dir.join("boot"));
    Ok(Kernel { label, vmlinuz })
}

/// `dpkg-deb --fsys-tarfile DEB | tar -x ./boot/vmlinuz-*`: only the kernel
/// image, not the hundreds of MB of modules.
fn extract_vmlinuz(deb: &Path, into: &Path) -> Result<()> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("running dpkg-deb")?;
    let tar = Command::new("tar")
        .args(["-x", "--wildcards", "./boot/vmlinuz-*"])
        .current_dir(into)
        .stdin(dpkg.stdout.take().expect("piped"))
        .status()
        .context("running tar")?;
    let dpkg = dpkg.wait()?;
    anyhow::ensure!(
        dpkg.success() && tar.success(),
        "unpacking {} failed",
        deb.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_generic_package_of_a_series_is_picked() {
        let names = [
            "linux-image-6.1.0-9-amd64-unsigned",
            "linux-image-6.1.0-56-amd64-unsigned",
            "linux-image-6.1.0-56-rt-amd64-unsigned",
            "linux-image-6.1.0-56-cloud-amd64-unsigned",
            "linux-image-6.1.0-55-amd64-unsigned",
            "linux-image-6.12.117+deb12-amd64-unsigned",
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.115+deb12-cloud-amd64-unsigned",
        ];
        let pick = |series, flavour| pick_newest(series, flavour, names.iter().copied());
        assert_eq!(
            pick("6.1", None).as_deref(),
            Some("linux-image-6.1.0-56-amd64-unsigned")
        );
        assert_eq!(
            pick("6.12", None).as_deref(),
            Some("linux-image-6.12.117+deb12-amd64-unsigned")
        );
        assert_eq!(
            pick("6.1", Some(Flavour::Rt)).as_deref(),
            Some("linux-image-6.1.0-56-rt-amd64-unsigned")
        );
        assert_eq!(
            pick("6.12", Some(Flavour::Cloud)).as_deref(),
            Some("linux-image-6.12.117+deb12-cloud-amd64-unsigned")
        );
        assert_eq!(pick("6.12", Some(Flavour::Rt)), None);
        assert_eq!(pick("5.10", None), None);
    }

    #[test]
    fn kernel_choices_parse() {
        assert_eq!(
            "6.12".parse::<KernelChoice>().unwrap(),
            KernelChoice::Series("6.12".into())
        );
        assert!(matches!(
            "/boot/vmlinuz".parse::<KernelChoice>().unwrap(),
            KernelChoice::File(_)
        ));
        assert_eq!(
            "6.12-rt".parse::<KernelChoice>().unwrap(),
            KernelChoice::Flavoured("6.12".into(), Flavour::Rt)
        );
        assert_eq!(
            "6.1-cloud".parse::<KernelChoice>().unwrap().to_string(),
            "6.1-cloud"
        );
        assert!("six".parse::<KernelChoice>().is_err());
        assert!("6.12-foo".parse::<KernelChoice>().is_err());
    }
}

//! The HTML report's charts show what their scenario is about, on a real
//! run: memory-hog's memory series climbs to the limit in enough samples
//! before the OOM kill, and the page, as headless Chromium draws it at
//! 1,400 px, has its banner, a chart per measured series and nothing
//! beyond the content column. Needs root and `chromium` (apt-get install
//! chromium); under CI=true a missing one fails the test.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Scenarios with something to chart (memory, pids) and without (namespaces).
const SCENARIOS: [&str; 4] = [
    "memory-hog",
    "pids-fork-bomb",
    "pid-namespace",
    "uts-namespace",
];

/// One real run of [`SCENARIOS`], shared by the tests: (report dir, JSON).
fn run() -> &'static (PathBuf, Value) {
    static RUN: OnceLock<(PathBuf, Value)> = OnceLock::new();
    RUN.get_or_init(|| {
        // Under target/tmp, replaced at each run: the page and its
        // screenshot stay there to be looked at.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-charts");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["scenarios", "--format", "json", "--out"])
            .arg(&dir);
        for s in SCENARIOS {
            cmd.args(["--only", s]);
        }
        let out = cmd.output().unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (dir, report)
    })
}

#[test]
fn memory_hog_is_seen_climbing_to_its_limit_before_the_kill() {
    let _room = room!();
    if !root_or_skip("memory_hog_is_seen_climbing_to_its_limit_before_the_kill") {
        return;
    }
    let (_, report) = run();
    let hog = scenario_in(report, "memory-hog");
    let limit = hog["limits"]["memory_bytes"].as_f64().unwrap();
    let samples = hog["samples"].as_array().unwrap();
    let series: Vec<(u64, f64, u64)> = samples
        .iter()
        .filter_map(|s| {
            Some((
                s["t_ms"].as_u64()?,
                s["memory_bytes"].as_f64()?,
                s["oom_kills"].as_u64()?,
            ))
        })
        .collect();
    let kill = series
        .iter()
        .position(|s| s.2 > 0)
        .unwrap_or_else(|| panic!("no sample after the OOM kill: {series:?}"));
    let before = &series[..kill];
    assert!(
        before.len() >= 5,
        "{} samples between the start and the kill: {series:?}",
        before.len()
    );
    let peak = before.iter().map(|s| s.1).fold(0.0, f64::max);
    assert!(
        peak >= 0.9 * limit,
        "the series rises to {peak} B only, limit {limit} B: {series:?}"
    );
    assert!(
        before.first().unwrap().1 < 0.5 * limit,
        "no climb: {series:?}"
    );
    // The report does not contradict itself: no "0 limit hits" next to
    // an OOM kill.
    let m = &hog["measurements"];
    assert_eq!(m["oom_kills"].as_f64(), Some(1.0), "{m}");
    assert!(
        m.get("memory_limit_hits")
            .is_none_or(|h| h.as_f64() != Some(0.0)),
        "{m}"
    );
    // The page marks the limit, the peak and the kill on the memory chart.
    let (dir, _) = run();
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let start = page.find("id=\"scenario-memory-hog\"").unwrap();
    let section = &page[start..start + page[start..].find("</section>").unwrap()];
    for mark in ["limit 64.0 MiB</text>", "class=\"peak\"", "OOM kill</text>"] {
        assert!(section.contains(mark), "{mark} missing: {section}");
    }
}

/// The PNG's pixels, RGB, row-major.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

fn decode(path: &Path) -> Image {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Image {
        width: info.width as usize,
        height: info.height as usize,
        rgb,
    }
}

fn hex(c: &str) -> [u8; 3] {
    let v = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 24)
}

/// Bands of rows holding at least `min` pixels near one of `colors`,
/// split where `gap` rows hold none.
fn bands(img: &Image, colors: &[[u8; 3]], min: usize, gap: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for y in 0..img.height {
        let row = &img.rgb[y * img.width..(y + 1) * img.width];
        if row
            .iter()
            .filter(|p| colors.iter().any(|c| near(**p, *c)))
            .count()
            >= min
        {
            match out.last_mut() {
                Some(last) if y - last.1 <= gap => last.1 = y,
                _ => out.push((y, y)),
            }
        }
    }
    out
}

/// Row ranges of vertical lines of `color` at least 60 px long (a chart's
/// y axis; a data point drawn over it may break it for a few rows), one
/// per range however many columns it spans.
fn vertical_axes(img: &Image, color: [u8; 3]) -> Vec<(usize, usize)> {
    let mut found: Vec<(usize, usize)> = Vec::new();
    for x in 0..img.width {
        let mut run: Option<(usize, usize)> = None;
        for y in 0..=img.height {
            let on = y < img.height && img.rgb[y * img.width + x] == color;
            match (&mut run, on) {
                (Some(r), true) if y - r.1 <= 2 => r.1 = y,
                (_, true) => {
                    if let Some(r) = run.take() {
                        found.push(r);
                    }
                    run = Some((y, y));
                }
                _ => {}
            }
        }
        if let Some(r) = run {
            found.push(r);
        }
    }
    let mut axes: Vec<(usize, usize)> = Vec::new();
    found.retain(|r| r.1 - r.0 >= 60);
    found.sort();
    for r in found {
        match axes.last_mut() {
            Some(last) if r.0 <= last.1 => last.1 = last.1.max(r.1),
            _ => axes.push(r),
        }
    }
    axes
}

fn chromium(args: &[&str], page: &Path) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("running chromium")
}

#[test]
fn the_page_as_chromium_draws_it_has_its_banner_charts_and_no_overflow() {
    let _room = room!();
    let test = "the_page_as_chromium_draws_it_has_its_banner_charts_and_no_overflow";
    if !root_or_skip(test)
        || !present_or_skip(
            Command::new("chromium").arg("--version").output().is_ok(),
            test,
            "chromium (apt-get install chromium)",
        )
    {
        return;
    }
    let (dir, report) = run();
    let page = dir.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script"), "the page needs no JavaScript");
    let charts = html.matches("<figure class=\"chart\">").count();
    // Every scenario with a limit to show has its chart.
    for id in ["memory-hog", "pids-fork-bomb"] {
        let start = html.find(&format!("id=\"scenario-{id}\"")).unwrap();
        let section = &html[start..start + html[start..].find("</section>").unwrap()];
        assert!(
            section.contains("<figure class=\"chart\">"),
            "{id} has no chart"
        );
    }
    assert!(charts >= 3, "{charts} charts");

    // Layout: a copy of the page that writes its scroll width into the DOM.
    let probe = dir.join("layout-probe.html");
    std::fs::write(
        &probe,
        html.replace(
            "</body>",
            "<script>document.body.setAttribute('data-scroll-width', \
             document.documentElement.scrollWidth)</script></body>",
        ),
    )
    .unwrap();
    let out = chromium(&["--window-size=1400,900", "--dump-dom"], &probe);
    let dom = String::from_utf8_lossy(&out.stdout);
    let width: u32 = dom
        .split("data-scroll-width=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no scroll width in the DOM: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        width <= 1400,
        "the page is {width} px wide at a 1400 px window"
    );
    assert_eq!(
        dom.matches("<figure class=\"chart\">").count(),
        charts,
        "Chromium's DOM has the page's charts"
    );

    // The screenshot, tall enough for the whole page.
    let shot = dir.join("report.png");
    let out = chromium(
        &[
            "--window-size=1400,5000",
            &format!("--screenshot={}", shot.display()),
        ],
        &page,
    );
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = decode(&shot);
    assert_eq!(img.width, 1400);
    // The banner: a wide band of its colour near the top.
    let ok = report["summary"]["failed"] == 0 && report["summary"]["errored"] == 0;
    let banner = hex(if ok { "#1a7f37" } else { "#cf222e" });
    let top = bands(&img, &[banner], 400, 2);
    assert!(
        top.first().is_some_and(|b| b.0 < 200 && b.1 - b.0 >= 20),
        "no banner at the top: {top:?}"
    );
    // One chart per band of rows crossed by an axis (the vertical axis
    // runs the height of the plot), each with its series drawn in it.
    let plots = vertical_axes(&img, hex(reports::render::AXIS));
    assert_eq!(plots.len(), charts, "charts in the screenshot: {plots:?}");
    let series = [
        hex(reports::render::CPU_STROKE),
        hex(reports::render::MEMORY_STROKE),
        hex(reports::render::PIDS_STROKE),
    ];
    for (top, bottom) in &plots {
        // A series along the bottom may cover the axis' last rows.
        let drawn = (*top..=(*bottom + 12).min(img.height - 1))
            .flat_map(|y| img.rgb[y * img.width..(y + 1) * img.width].iter())
            .filter(|p| series.iter().any(|c| near(**p, *c)))
            .count();
        assert!(
            drawn >= 20,
            "the chart at rows {top}-{bottom} has no series drawn"
        );
    }
    // Nothing is drawn beyond the content column (max-width 960 px, centred).
    let right = (1250..img.width)
        .flat_map(|x| (0..img.height).map(move |y| (x, y)))
        .find(|&(x, y)| img.rgb[y * img.width + x] != [255, 255, 255]);
    assert!(
        right.is_none(),
        "a pixel at {right:?} is beyond the content column"
    );
}

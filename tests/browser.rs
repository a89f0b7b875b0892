//! The HTML report in a real browser: headless Chromium (the Debian package `chromium`) loads
//! the report of a failing ZooKeeper scenario, and the test asserts that the page loads
//! without errors, that the space-time diagram is there with one lane per node in order, that
//! every inline SVG is well-formed XML on its own, and that a screenshot is not blank.
//!
//! When Chromium is missing the test tries to install it (`apt-get`, as `.ci/run` does); it
//! skips with a message only when that is impossible (no apt-get, not root, no network).

use std::path::{Path, PathBuf};
use std::process::Command;

use faultline::campaign;
use faultline::scenario::Scenario;

fn chromium() -> Option<PathBuf> {
    let found = || {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(p) = found() {
        return Some(p);
    }
    eprintln!("chromium is missing: trying `apt-get update && apt-get install -y chromium`");
    let installed = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("apt-get could not install chromium");
    }
    found()
}

/// Runs headless Chromium with the flags a sandboxed CI needs and a fresh profile.
fn headless(browser: &Path, profile: &Path, args: &[&str]) -> std::process::Output {
    let _ = std::fs::remove_dir_all(profile);
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium starts")
}

fn write_report(dir: &Path) -> PathBuf {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/zk-bug-ZOOKEEPER-1675.json");
    let scenario = Scenario::load(&file).unwrap();
    let run = campaign::run_seed(&scenario, scenario.seed, None);
    assert!(run.failed(), "the bug scenario must fail at its own seed");
    let json = campaign::write_report("zk-bug-ZOOKEEPER-1675.json", &scenario, &run, dir).unwrap();
    json.with_extension("html")
}

/// The screenshot, measured inside the browser: a canvas counts the pixels that are not
/// near-white and the distinct colours among a sample of them.
fn measure_png(browser: &Path, profile: &Path, png: &Path) -> (u64, u64) {
    let page = png.with_extension("measure.html");
    let script = format!(
        "<!doctype html><body><script>\
         const img = new Image();\
         img.onload = () => {{\
           const c = document.createElement('canvas');\
           c.width = img.width; c.height = img.height;\
           const g = c.getContext('2d'); g.drawImage(img, 0, 0);\
           const d = g.getImageData(0, 0, c.width, c.height).data;\
           let inked = 0; const colours = new Set();\
           for (let i = 0; i < d.length; i += 4) {{\
             if (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240) inked++;\
             if (i % 64 === 0) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);\
           }}\
           document.body.setAttribute('data-result', inked + ' ' + colours.size);\
         }};\
         img.src = '{}';\
         </script></body>",
        png.file_name().unwrap().to_str().unwrap()
    );
    std::fs::write(&page, script).unwrap();
    let url = format!("file://{}", page.display());
    let out = headless(
        browser,
        profile,
        &[
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            "--dump-dom",
            &url,
        ],
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let result = dom
        .split("data-result=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("the measuring page gave no result: {dom}"));
    let mut it = result.split(' ').map(|n| n.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED html_report_renders_in_headless_chromium: chromium is not installed and \
             could not be installed (apt-get install -y chromium failed); CI installs it"
        );
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-report");
    let _ = std::fs::remove_dir_all(&dir);
    let html = write_report(&dir);
    let profile = dir.join("profile");
    let url = format!("file://{}", html.display());

    // The page loads: Chromium exits cleanly and the DOM it built holds the diagram.
    let out = headless(&browser, &profile, &["--dump-dom", &url]);
    assert!(out.status.success(), "chromium failed: {:?}", out.status);
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    for bad in ["Uncaught", "Failed to load resource", "net::ERR_"] {
        assert!(!log.contains(bad), "the page logged {bad:?}:\n{log}");
    }
    assert!(dom.contains("<svg class=\"spacetime\""), "no diagram");
    assert!(dom.contains("<svg class=\"overview\""), "no overview strip");
    assert!(dom.contains("<svg class=\"witness\""), "no witness picture");
    let lanes: Vec<&str> = dom
        .split("data-lane=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    let want: Vec<String> = (0..5)
        .map(|i| format!("zk{i}"))
        .chain((0..8).map(|i| format!("c{i}")))
        .collect();
    assert_eq!(lanes, want, "lanes: servers then clients, in order");
    assert!(dom.contains("class=\"msg\""), "no message arrows");
    assert!(
        dom.contains("class=\"violation\""),
        "the violating event is not marked"
    );

    // Every inline SVG is well-formed XML on its own: Chromium reports a parse error in the
    // DOM of a standalone .svg file.
    let text = std::fs::read_to_string(&html).unwrap();
    for (i, piece) in text.split("<svg ").skip(1).enumerate() {
        let body = &piece[..piece.find("</svg>").expect("closed svg") + 6];
        let file = dir.join(format!("figure{i}.svg"));
        std::fs::write(&file, format!("<svg {body}")).unwrap();
        let url = format!("file://{}", file.display());
        let out = headless(&browser, &profile, &["--dump-dom", &url]);
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(
            !dom.contains("parsererror"),
            "figure {i} is not well-formed: {dom:.400}"
        );
    }

    // A screenshot is not blank: many inked pixels and many colours.
    let png = dir.join("report.png");
    let shot = format!("--screenshot={}", png.display());
    let out = headless(
        &browser,
        &profile,
        &["--window-size=1200,2400", &shot, &url],
    );
    assert!(out.status.success() && png.exists(), "no screenshot");
    let (inked, colours) = measure_png(&browser, &profile, &png);
    assert!(
        inked > 100_000,
        "only {inked} non-white pixels: the page looks blank"
    );
    assert!(colours > 20, "only {colours} colours: the page looks blank");
}

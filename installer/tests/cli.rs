//! qos-install's command line as an administrator meets it: `--help` and `man qos-install`.

#![allow(clippy::unwrap_used)]

use std::process::Command;

const QOS_INSTALL: &str = env!("CARGO_BIN_EXE_qos-install");

/// The page the image stages as /usr/share/man/man8/qos-install.8: section 8, dated by
/// SOURCE_DATE_EPOCH (two builds write the same page), every option with its help text, and
/// none of the options kept for tests.
#[test]
fn the_man_page_documents_every_option_an_administrator_uses() {
    let out = Command::new(QOS_INSTALL)
        .arg("--man-page")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.contains(".TH qos-install 8 2023-11-14 \"QuantumOS"),
        "{}",
        page.lines()
            .find(|l| l.starts_with(".TH"))
            .unwrap_or("no .TH line")
    );
    for option in [
        "disk",
        "dry\\-run",
        "hostname",
        "password\\-file",
        "timezone",
        "swap",
    ] {
        assert!(
            page.contains(&format!("\\-\\-{option}")),
            "--{option} missing"
        );
    }
    assert!(
        page.contains("hostname [default: asked, or quantumos]"),
        "--hostname's help text"
    );
    for hidden in ["repart\\-dir", "min\\-disk\\-mib", "man\\-page"] {
        assert!(
            !page.contains(hidden),
            "--{hidden} is for tests and packagers"
        );
    }

    let help = Command::new(QOS_INSTALL).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(!String::from_utf8_lossy(&help.stdout).contains("--man-page"));
}

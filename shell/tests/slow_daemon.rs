//! qsh against a prompt daemon that takes longer than a bus call normally may: what
//! steppps-promptd does on its first request after boot, while it loads its language model.
//! The stand-in serves `org.quantumos.Prompt1` on a private bus and answers after a delay.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use steppps::api::prompt::Suggestion;
use steppps::testing::TestBus;

struct SlowPrompt {
    delay: Duration,
}

#[zbus::interface(name = "org.quantumos.Prompt1")]
impl SlowPrompt {
    async fn translate(&self, _text: &str, _cwd: &str, _max: u32) -> Vec<Suggestion> {
        tokio::time::sleep(self.delay).await;
        vec![Suggestion {
            command: "df -h".into(),
            explanation: "Free space on every mounted file system".into(),
            risk: "read-only".into(),
            confidence: 0.9,
            intent: "disk.free".into(),
            missing: 0,
        }]
    }
}

/// An answer after four seconds (past the three qsh gives an ordinary call) is waited for,
/// and qsh says on standard error what it is waiting for instead of giving up.
#[tokio::test]
async fn a_slow_first_answer_is_waited_for_and_explained() {
    let bus = TestBus::start().unwrap();
    let _prompt = zbus::connection::Builder::address(bus.address())
        .name("org.quantumos.Prompt1")
        .serve_at(
            "/org/quantumos/Prompt1",
            SlowPrompt {
                delay: Duration::from_secs(4),
            },
        )
        .build()
        .await
        .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_qsh"))
        .args(["--suggest", "how much disk space is free"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus.address())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "df -h");
    assert!(stderr.contains("waiting for the prompt daemon"), "{stderr}");
}

//! steppps-promptd as a real process on a private bus, and `qos-ctl prompt` against it.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use steppps::api::PROMPT;
use steppps::api::prompt::Prompt1Proxy;
use steppps::testing::{TestBus, workspace_binary};

fn error_name(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            format!("{name}: {}", msg.clone().unwrap_or_default())
        }
        other => other.to_string(),
    }
}

async fn promptd(bus: &mut TestBus, model: Option<(PathBuf, PathBuf)>) {
    let config = bus.dir().join("prompt.toml");
    let (m, c) =
        model.unwrap_or_else(|| (bus.dir().join("no-model"), bus.dir().join("no-catalog")));
    std::fs::write(
        &config,
        format!(
            "model_dir = {:?}\ncatalog_dir = {:?}\nidle_unload_sec = 2\n",
            m, c
        ),
    )
    .unwrap();
    bus.spawn_daemon(
        &workspace_binary("steppps-promptd").unwrap(),
        &["--config", config.to_str().unwrap()],
    )
    .unwrap();
    bus.wait_for_name(PROMPT.bus_name).await.unwrap();
}

#[tokio::test]
async fn without_a_model_it_says_so_and_stays_up() {
    let mut bus = TestBus::start().unwrap();
    promptd(&mut bus, None).await;
    let conn = bus.connect().await.unwrap();
    let p = Prompt1Proxy::new(&conn).await.unwrap();
    let err = error_name(&p.translate("list files", "", 3).await.unwrap_err());
    assert!(
        err.starts_with("org.quantumos.Error.Failed") && err.contains("missing"),
        "{err}"
    );
    let err = error_name(&p.translate("", "", 3).await.unwrap_err());
    assert!(
        err.starts_with("org.quantumos.Error.InvalidArgument"),
        "{err}"
    );
    let err = error_name(&p.translate(&"x".repeat(1 << 20), "", 3).await.unwrap_err());
    assert!(
        err.starts_with("org.quantumos.Error.InvalidArgument") && err.contains("too long"),
        "{err}"
    );
    let out = bus
        .busctl(&[
            "call",
            PROMPT.bus_name,
            PROMPT.path,
            "org.quantumos.Dimension1",
            "Health",
        ])
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("bs false"), "{text}");
    // Reload needs root or polkit; as root (CI) it fails for the missing model instead.
    let err = error_name(&p.reload().await.unwrap_err());
    assert!(
        err.contains("PermissionDenied") || err.contains("missing"),
        "{err}"
    );
    // Still serving.
    assert!(p.translate("list files", "", 3).await.is_err());
}

#[tokio::test]
async fn translates_explains_and_unloads_when_idle() {
    let Some(dirs) = steppps_prompt::model::dirs_for_tests() else {
        return;
    };
    let mut bus = TestBus::start().unwrap();
    promptd(&mut bus, Some(dirs)).await;
    let conn = bus.connect().await.unwrap();
    let p = Prompt1Proxy::new(&conn).await.unwrap();
    let found = p
        .translate("show the five biggest files here", "/", 3)
        .await
        .unwrap();
    assert_eq!(found[0].command, "du -ah . | sort -rh | head -n 5");
    assert_eq!(found[0].risk, "read-only");
    assert!(found.len() <= 3);
    assert!(
        p.translate("bake me a chocolate cake", "", 3)
            .await
            .unwrap()
            .is_empty()
    );
    let e = p.explain("sudo rm -rf /tmp/x").await.unwrap();
    assert_eq!(e.risk, "destructive");

    // qos-ctl prompt translate / explain, as a person runs them.
    let qos = workspace_binary("qos-ctl").unwrap();
    let out = bus
        .command(&qos)
        .args([
            "prompt",
            "translate",
            "which process listens on port 8080",
            "-n",
            "2",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("8080") && text.contains("read-only"),
        "{text}"
    );
    let out = bus
        .command(&qos)
        .args(["--json", "prompt", "translate", "install htop"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["command"], "sudo apt install htop");
    assert_eq!(json[0]["risk"], "privileged");
    let out = bus
        .command(&qos)
        .args(["prompt", "translate", "write a poem about the sea"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "no suggestion has its own exit status"
    );
    let out = bus
        .command(&qos)
        .args(["prompt", "explain", "tar -tvf a.tar | wc -l"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("risk: read-only"),
        "{text}"
    );

    // The model is dropped after the idle time and comes back on the next request.
    let loaded = || async {
        let out = bus
            .busctl(&[
                "call",
                PROMPT.bus_name,
                PROMPT.path,
                "org.quantumos.Dimension1",
                "Health",
            ])
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("model loaded;")
    };
    assert!(loaded().await);
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert!(!loaded().await, "model still loaded after the idle time");
    assert!(!p.translate("list files", "", 1).await.unwrap().is_empty());
}

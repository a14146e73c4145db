//! steppps-pixeld as a real process on a private bus, pointed at fixture sysfs trees: a laptop
//! (eDP panel, HDMI monitor, an empty DP port, firmware and raw backlights, a light sensor)
//! and a VM with no display hardware at all.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use nix::sys::signal::Signal;
use steppps::api::PIXEL;
use steppps::api::dimension::dimension_proxy;
use steppps::api::pixel::{Pixel1Proxy, Policy};
use steppps::testing::{DaemonPid, TestBus, workspace_binary};
use steppps_pixel::edid::build;

fn write(path: &Path, contents: impl AsRef<[u8]>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

/// A laptop's /sys, laid out as the kernel does (files the daemon does not read included).
fn laptop(root: &Path) {
    let drm = root.join("sys/class/drm");
    write(&drm.join("card0/dev"), "226:0\n");
    write(&drm.join("renderD128/dev"), "226:128\n");
    write(&drm.join("version"), "drm 1.1.0 20060810\n");
    let connector = |name: &str, status: &str, modes: &str, edid: &[u8]| {
        let dir = drm.join(format!("card0-{name}"));
        write(&dir.join("status"), format!("{status}\n"));
        write(
            &dir.join("enabled"),
            if status == "connected" {
                "enabled\n"
            } else {
                "disabled\n"
            },
        );
        write(&dir.join("dpms"), "On\n");
        write(&dir.join("modes"), modes);
        write(&dir.join("edid"), edid);
    };
    connector(
        "eDP-1",
        "connected",
        "2880x1800\n1920x1200\n1280x800\n",
        &build::boe_laptop_panel(),
    );
    connector(
        "HDMI-A-1",
        "connected",
        "1920x1200\n1920x1080\n1600x1200\n1280x1024\n",
        &build::dell_u2415(),
    );
    connector("DP-1", "disconnected", "", &[]);
    let mut damaged = build::dell_u2415();
    damaged[100] ^= 0xFF;
    connector("DP-2", "connected", "1920x1200\n", &damaged);

    let bl = root.join("sys/class/backlight");
    for (name, kind, max, now) in [
        ("intel_backlight", "raw", "24000", "12000"),
        ("acpi_video0", "firmware", "15", "9"),
    ] {
        write(&bl.join(name).join("type"), format!("{kind}\n"));
        write(&bl.join(name).join("max_brightness"), format!("{max}\n"));
        write(&bl.join(name).join("brightness"), format!("{now}\n"));
        write(&bl.join(name).join("actual_brightness"), format!("{now}\n"));
        write(&bl.join(name).join("bl_power"), "0\n");
    }
    let als = root.join("sys/bus/iio/devices/iio:device0");
    write(&als.join("name"), "acpi-als\n");
    write(&als.join("in_illuminance_raw"), "2500\n");
    write(&als.join("in_illuminance_scale"), "0.100000\n");
}

struct Fixture {
    bus: TestBus,
    root: PathBuf,
    pid: DaemonPid,
}

async fn start(build_tree: fn(&Path), config: &str) -> Fixture {
    let mut bus = TestBus::start().unwrap();
    let root = bus.dir().join("root");
    fs::create_dir_all(&root).unwrap();
    build_tree(&root);
    let config_path = bus.dir().join("pixel.toml");
    fs::write(&config_path, config).unwrap();
    let binary = workspace_binary("steppps-pixeld").unwrap();
    let pid = bus
        .spawn_daemon(
            &binary,
            &[
                "--sysfs-root",
                root.to_str().unwrap(),
                "--config",
                config_path.to_str().unwrap(),
            ],
        )
        .unwrap();
    bus.wait_for_name(PIXEL.bus_name).await.unwrap();
    Fixture { bus, root, pid }
}

fn remote_error(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            format!("{name}: {}", msg.as_deref().unwrap_or(""))
        }
        other => other.to_string(),
    }
}

#[tokio::test]
async fn outputs_with_edid_dpi_and_scale() {
    let f = start(laptop, "hotplug = false\n").await;
    let conn = f.bus.connect().await.unwrap();
    let pixel = Pixel1Proxy::new(&conn).await.unwrap();
    let outputs = pixel.list_outputs().await.unwrap();
    let names: Vec<_> = outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["DP-1", "DP-2", "HDMI-A-1", "eDP-1"]);

    let panel = &outputs[3];
    assert!(panel.internal && panel.enabled);
    assert_eq!(panel.card, "card0");
    assert_eq!(panel.manufacturer, "BOE");
    assert_eq!(panel.model, "NE140QDM-NX1");
    assert_eq!((panel.width_px, panel.height_px), (2880, 1800));
    assert_eq!((panel.width_mm, panel.height_mm), (302, 189));
    assert_eq!(panel.dpi, 242.2);
    assert_eq!(panel.scale, 2.0);
    assert_eq!(panel.modes[0], "2880x1800");

    let monitor = &outputs[2];
    assert!(!monitor.internal);
    assert_eq!(monitor.manufacturer, "DEL");
    assert_eq!(monitor.product_code, 0xA0B5);
    assert_eq!(monitor.model, "DELL U2415");
    assert_eq!(monitor.serial_text, "7MT0167B0RFL");
    assert_eq!(monitor.year, 2016);
    assert_eq!(monitor.refresh_hz, 59.95);
    assert_eq!(monitor.dpi, 94.1);
    assert_eq!(monitor.scale, 1.0);

    let empty = &outputs[0];
    assert_eq!(empty.status, "disconnected");
    assert!(!empty.enabled && empty.manufacturer.is_empty() && empty.edid_error.is_empty());
    let damaged = &outputs[1];
    assert!(damaged.edid_error.contains("checksum"), "{damaged:?}");
    assert_eq!(damaged.scale, 1.0);
}

#[tokio::test]
async fn brightness_get_set_and_bad_input() {
    let f = start(laptop, "hotplug = false\n").await;
    let conn = f.bus.connect().await.unwrap();
    let pixel = Pixel1Proxy::new(&conn).await.unwrap();
    let all = pixel.list_backlights().await.unwrap();
    assert_eq!(all[0].name, "acpi_video0", "firmware is preferred over raw");
    let preferred = pixel.get_brightness("").await.unwrap();
    assert_eq!((preferred.brightness, preferred.percent), (9, 60));
    let raw = pixel.get_brightness("intel_backlight").await.unwrap();
    assert_eq!((raw.kind.as_str(), raw.percent), ("raw", 50));

    let mut changes = pixel.receive_brightness_changed().await.unwrap();
    let after = pixel.set_brightness("intel_backlight", 75).await.unwrap();
    assert_eq!((after.brightness, after.percent), (18000, 75));
    let file = f
        .root
        .join("sys/class/backlight/intel_backlight/brightness");
    assert_eq!(fs::read_to_string(&file).unwrap().trim(), "18000");
    let signal = tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .expect("no BrightnessChanged")
        .unwrap();
    let args = signal.args().unwrap();
    assert_eq!((args.device(), *args.percent()), (&"intel_backlight", 75));
    assert_eq!(pixel.set_brightness("", 0).await.unwrap().brightness, 0);

    for (call, expect) in [
        (
            pixel
                .set_brightness("intel_backlight", 101)
                .await
                .unwrap_err(),
            "InvalidArgument: brightness 101% is out of range",
        ),
        (
            pixel.set_brightness("nonexistent", 50).await.unwrap_err(),
            "NotFound: no backlight `nonexistent`; known: acpi_video0, intel_backlight",
        ),
        (
            pixel.get_brightness("../../../etc").await.unwrap_err(),
            "InvalidArgument: `../../../etc` is not a backlight device name",
        ),
    ] {
        let text = remote_error(&call);
        assert!(
            text.starts_with(&format!("org.quantumos.Error.{expect}")),
            "{text}"
        );
    }
    assert_eq!(fs::read_to_string(&file).unwrap().trim(), "18000");
}

#[tokio::test]
async fn ambient_light_and_a_policy_that_survives_restart() {
    let mut f = start(laptop, "hotplug = false\n").await;
    let conn = f.bus.connect().await.unwrap();
    let pixel = Pixel1Proxy::new(&conn).await.unwrap();
    let ambient = pixel.get_ambient().await.unwrap();
    assert!(ambient.present);
    assert_eq!(ambient.device, "iio:device0");
    assert!((ambient.lux - 250.0).abs() < 1e-9);
    assert_eq!(
        ambient.recommended_percent, 64,
        "250 lux on the 10–100 % curve"
    );

    assert_eq!(pixel.get_policy().await.unwrap(), Policy::default());
    let wanted = Policy {
        adaptive: true,
        min_percent: 20,
        max_percent: 90,
        idle_dim_seconds: 60,
        dim_percent: 10,
        blank_seconds: 300,
    };
    assert_eq!(pixel.set_policy(&wanted).await.unwrap(), wanted);
    let bad = Policy {
        min_percent: 95,
        ..wanted.clone()
    };
    let err = remote_error(&pixel.set_policy(&bad).await.unwrap_err());
    assert!(
        err.contains("InvalidArgument") && err.contains("above"),
        "{err}"
    );

    // Restarted on the same state directory, the policy is still there.
    drop(pixel);
    drop(conn);
    let binary = workspace_binary("steppps-pixeld").unwrap();
    let dim = {
        let conn = f.bus.connect().await.unwrap();
        dimension_proxy(&conn, &PIXEL)
            .await
            .unwrap()
            .health()
            .await
            .unwrap()
    };
    assert!(dim.0 && dim.1.contains("ambient light sensor"), "{dim:?}");
    f.bus.signal(f.pid, Signal::SIGKILL).unwrap();
    f.bus.wait_exit(f.pid, Duration::from_secs(10)).unwrap();
    f.bus
        .spawn_daemon(&binary, &["--sysfs-root", f.root.to_str().unwrap()])
        .unwrap();
    f.bus.wait_for_name(PIXEL.bus_name).await.unwrap();
    let conn = f.bus.connect().await.unwrap();
    let pixel = Pixel1Proxy::new(&conn).await.unwrap();
    assert_eq!(pixel.get_policy().await.unwrap(), wanted);
}

#[tokio::test]
async fn adaptive_brightness_follows_the_light() {
    let f = start(laptop, "hotplug = false\npoll_ms = 100\n").await;
    let conn = f.bus.connect().await.unwrap();
    let pixel = Pixel1Proxy::new(&conn).await.unwrap();
    pixel
        .set_policy(&Policy {
            adaptive: true,
            idle_dim_seconds: 0,
            ..Policy::default()
        })
        .await
        .unwrap();
    // The preferred backlight is acpi_video0 (9 of 15).
    // Darkness: 0 lux → 10 %.
    let als = f
        .root
        .join("sys/bus/iio/devices/iio:device0/in_illuminance_raw");
    fs::write(&als, "0\n").unwrap();
    let file = f.root.join("sys/class/backlight/acpi_video0/brightness");
    let mut level = String::new();
    for _ in 0..100 {
        level = fs::read_to_string(&file).unwrap().trim().to_string();
        if level == "2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(level, "2", "10 % of 15, rounded");
}

#[tokio::test]
async fn hotplug_is_announced() {
    let f = start(laptop, "hotplug = false\npoll_ms = 100\n").await;
    let conn = f.bus.connect().await.unwrap();
    let pixel = Pixel1Proxy::new(&conn).await.unwrap();
    let mut changed = pixel.receive_output_changed().await.unwrap();
    let dp = f.root.join("sys/class/drm/card0-DP-1");
    fs::write(dp.join("edid"), build::dell_u2415()).unwrap();
    fs::write(dp.join("modes"), "1920x1200\n").unwrap();
    fs::write(dp.join("status"), "connected\n").unwrap();
    let signal = tokio::time::timeout(Duration::from_secs(10), changed.next())
        .await
        .expect("no OutputChanged")
        .unwrap();
    let args = signal.args().unwrap();
    assert_eq!((*args.name(), *args.status()), ("DP-1", "connected"));
    let outputs = pixel.list_outputs().await.unwrap();
    assert_eq!(outputs[0].model, "DELL U2415");

    fs::remove_dir_all(&dp).unwrap();
    let signal = tokio::time::timeout(Duration::from_secs(10), changed.next())
        .await
        .expect("no OutputChanged")
        .unwrap();
    assert_eq!(*signal.args().unwrap().status(), "removed");
}

#[tokio::test]
async fn no_display_hardware_is_a_normal_state() {
    let f = start(|_| {}, "hotplug = false\n").await;
    let conn = f.bus.connect().await.unwrap();
    let pixel = Pixel1Proxy::new(&conn).await.unwrap();
    assert!(pixel.list_outputs().await.unwrap().is_empty());
    assert!(pixel.list_backlights().await.unwrap().is_empty());
    assert!(!pixel.get_ambient().await.unwrap().present);
    let err = remote_error(&pixel.get_brightness("").await.unwrap_err());
    assert!(
        err.starts_with("org.quantumos.Error.NotFound: this machine has no backlight"),
        "{err}"
    );
    let err = remote_error(&pixel.set_brightness("", 50).await.unwrap_err());
    assert!(err.contains("NotFound"), "{err}");
    let dim = dimension_proxy(&conn, &PIXEL).await.unwrap();
    let (ok, detail) = dim.health().await.unwrap();
    assert!(ok, "{detail}");
    assert!(detail.contains("no display hardware"), "{detail}");
    assert_eq!(dim.state().await.unwrap(), "ready");
}

/// Changing brightness or the policy needs root or polkit: nobody (65534) is refused. Needs
/// root (setpriv); skipped otherwise.
#[tokio::test]
async fn only_root_or_polkit_may_change_brightness() {
    if !nix::unistd::Uid::effective().is_root()
        || Command::new("setpriv").arg("--version").output().is_err()
    {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let f = start(laptop, "hotplug = false\n").await;
    let nobody = |args: &[&str]| {
        f.bus
            .command("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "busctl"])
            .arg(format!("--address={}", f.bus.address()))
            .args(["call", PIXEL.bus_name, PIXEL.path, PIXEL.interface])
            .args(args)
            .output()
            .unwrap()
    };
    let out = nobody(&["SetBrightness", "su", "intel_backlight", "10"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("org.quantumos.pixel.set-brightness needs root"),
        "{err}"
    );
    let out = nobody(&["GetBrightness", "s", "intel_backlight"]);
    assert!(out.status.success(), "reading is open");
    let file = f
        .root
        .join("sys/class/backlight/intel_backlight/brightness");
    assert_eq!(fs::read_to_string(file).unwrap().trim(), "12000");
}

#[tokio::test]
async fn config_with_unknown_key_is_refused() {
    let bus = TestBus::start().unwrap();
    let config = bus.dir().join("pixel.toml");
    fs::write(&config, "poll_msec = 5\n").unwrap();
    let out = bus
        .command(workspace_binary("steppps-pixeld").unwrap())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `poll_msec`"), "{err}");
}

/// The shipped D-Bus policy lets root own org.quantumos.Pixel1 and nobody else. Needs root
/// (setpriv); skipped otherwise.
#[tokio::test]
async fn shipped_policy_lets_only_root_own_the_name() {
    if !nix::unistd::Uid::effective().is_root()
        || Command::new("setpriv").arg("--version").output().is_err()
    {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let policy = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../recipes/quantumos/usr/share/dbus-1/system.d/org.quantumos.Pixel1.conf");
    let bus = TestBus::start_with_policies(&[&policy]).unwrap();
    let binary = workspace_binary("steppps-pixeld").unwrap();
    let state = bus.dir().join("nobody-state");
    fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let out = bus
        .command("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&binary)
        .args(["--sysfs-root", "/"])
        .env("STATE_DIRECTORY", &state)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("Permission denied") && err.contains("steppps-pixeld") {
        eprintln!("skipped: nobody cannot execute {}", binary.display());
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not allowed to own org.quantumos.Pixel1"),
        "{err}"
    );
}

/// `qos-ctl pixel …` end to end. Needs the qos-ctl binary (built by `cargo test --workspace`);
/// skipped when it is absent.
#[tokio::test]
async fn qos_ctl_pixel_outputs_and_brightness() {
    let Ok(ctl) = workspace_binary("qos-ctl") else {
        eprintln!("skipped: qos-ctl is not built (cargo test --workspace builds it)");
        return;
    };
    let f = start(laptop, "hotplug = false\n").await;
    let run = |args: &[&str]| {
        f.bus
            .command(&ctl)
            .arg("pixel")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["outputs"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("DEL DELL U2415"), "{text}");
    assert!(text.contains("2880x1800@60"), "{text}");
    assert!(
        text.contains("(EDID: EDID base block checksum is wrong"),
        "{text}"
    );

    let out = run(&["brightness"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("acpi_video0") && text.contains("intel_backlight"),
        "{text}"
    );
    let out = run(&["brightness", "intel_backlight", "30"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("30%"));
    let out = run(&["brightness", "intel_backlight", "130"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of range"));
    let out = run(&["policy", "--adaptive", "true", "--min", "15"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("adaptive brightness: on (15–100%)"), "{text}");

    let none = start(|_| {}, "hotplug = false\n").await;
    let out = none
        .bus
        .command(&ctl)
        .args(["pixel", "brightness"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("backlight: none"));
}

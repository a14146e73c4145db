//! Psychology over D-Bus and the idle memory of steppps-psychologyd and steppps-pixeld, on a
//! private bus, release builds. Run with `ci/bench-psychology` (it builds both daemons in
//! release mode first). With a directory of UCI traces as argument the user's history is the
//! largest trace; otherwise a synthetic one.

use std::time::{Duration, Instant};

use steppps::api::psychology::{Context, Psychology1Proxy};
use steppps::api::{PIXEL, PSYCHOLOGY};
use steppps::testing::{TestBus, percentile, rss_kib, workspace_binary};
use steppps_psychology::history::parse_uci_trace;

fn history(dir: Option<&str>) -> Vec<String> {
    if let Some(dir) = dir.map(std::path::Path::new).filter(|d| d.is_dir()) {
        let mut best = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let all: Vec<String> = parse_uci_trace(&text).into_iter().flatten().collect();
            if all.len() > best.len() {
                best = all;
            }
        }
        return best;
    }
    (0..30_000)
        .map(|i| format!("cmd{} <1>", (i * 7919) % 3000))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let lines = history(dir.as_deref());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut bus = TestBus::start()?;
        let psy_pid = bus.spawn_daemon(&workspace_binary("steppps-psychologyd")?, &[])?;
        let pixel_pid = bus.spawn_daemon(
            &workspace_binary("steppps-pixeld")?,
            &["--sysfs-root", "/"],
        )?;
        bus.wait_for_name(PSYCHOLOGY.bus_name).await?;
        bus.wait_for_name(PIXEL.bus_name).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let idle_psy = rss_kib(psy_pid.0);
        let idle_pixel = rss_kib(pixel_pid.0);

        let conn = bus.connect().await?;
        let psy = Psychology1Proxy::new(&conn).await?;
        // A user's history as `~/.bash_history` lines.
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let start = Instant::now();
        for chunk in refs.chunks(20_000) {
            psy.import_history(chunk).await?;
        }
        let import = start.elapsed();
        // The first call loads (rebuilds) the model.
        let start = Instant::now();
        psy.predict(&Context::default(), 3).await?;
        let load = start.elapsed();

        let mut record = Vec::new();
        for i in 0..300 {
            let line = &lines[(i * 31) % lines.len()];
            let t = Instant::now();
            psy.record(line, "/home/user", 0, 5).await?;
            record.push(t.elapsed());
        }
        let mut predict = Vec::new();
        let mut complete = Vec::new();
        let prefixes = ["c", "l", "v", "m", "ls", "cd"];
        for i in 0..3000 {
            let context = Context {
                cwd: "/home/user".into(),
                previous: vec![lines[i % lines.len()].clone()],
            };
            let t = Instant::now();
            psy.predict(&context, 3).await?;
            predict.push(t.elapsed());
            let t = Instant::now();
            psy.complete(prefixes[i % prefixes.len()], 3).await?;
            complete.push(t.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let loaded_psy = rss_kib(psy_pid.0);

        println!(
            "history: {} commands; import {:.0} ms; first prediction (model rebuilt from SQLite) {:.1} ms",
            lines.len(),
            import.as_secs_f64() * 1e3,
            load.as_secs_f64() * 1e3
        );
        println!("| call over D-Bus | p50 µs | p99 µs |\n|---|---:|---:|");
        for (name, mut v) in [
            ("Predict(k=3)", predict),
            ("Complete(k=3)", complete),
            ("Record (committed, fsync)", record),
        ] {
            v.sort_unstable();
            println!(
                "| {name} | {:.0} | {:.0} |",
                percentile(&v, 0.5).as_secs_f64() * 1e6,
                percentile(&v, 0.99).as_secs_f64() * 1e6
            );
        }
        println!("| process | RSS |\n|---|---:|");
        println!("| steppps-psychologyd idle, no model loaded | {:.1} MiB |", idle_psy as f64 / 1024.0);
        println!(
            "| steppps-psychologyd with this history's model loaded | {:.1} MiB |",
            loaded_psy as f64 / 1024.0
        );
        println!("| steppps-pixeld idle (this machine's /sys) | {:.1} MiB |", idle_pixel as f64 / 1024.0);
        Ok(())
    })
}

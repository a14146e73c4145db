//! The prompt dimension over D-Bus, on a private bus, with the real model and catalog
//! (`ci/fetch-model`): `Translate` latency warm over the evaluation requests, the first call
//! (lazy model load), and steppps-promptd's memory idle, loaded and after the idle unload.
//! Run with `ci/bench-prompt`, which builds the daemon with the same profile first.

use std::time::{Duration, Instant};

use steppps::api::PROMPT;
use steppps::api::prompt::Prompt1Proxy;
use steppps::testing::{TestBus, percentile, rss_kib, workspace_binary};
use steppps_prompt::{catalog, model};

/// The requests of the evaluation set (second field of each line).
fn requests() -> anyhow::Result<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/requests.txt");
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split('|').nth(1))
        .map(|t| t.trim().to_string())
        .collect())
}

fn main() -> anyhow::Result<()> {
    let (model_dir, catalog_dir) = (model::default_model_dir(), catalog::default_catalog_dir());
    anyhow::ensure!(
        model_dir.join("model.safetensors").is_file() && catalog_dir.join("catalog.json").is_file(),
        "no model or catalog at {} / {}: run ci/fetch-model",
        model_dir.display(),
        catalog_dir.display()
    );
    let requests = requests()?;
    let idle_unload_sec = 5;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut bus = TestBus::start()?;
        let config = bus.dir().join("prompt.toml");
        std::fs::write(
            &config,
            format!(
                "model_dir = {model_dir:?}\ncatalog_dir = {catalog_dir:?}\nidle_unload_sec = {idle_unload_sec}\n"
            ),
        )?;
        let config = config.to_string_lossy().into_owned();
        let pid = bus.spawn_daemon(
            &workspace_binary("steppps-promptd")?,
            &["--config", &config],
        )?;
        bus.wait_for_name(PROMPT.bus_name).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = rss_kib(pid.0);

        let conn = bus.connect().await?;
        let prompt = Prompt1Proxy::new(&conn).await?;
        let cwd = std::env::temp_dir().to_string_lossy().into_owned();
        let start = Instant::now();
        prompt.translate(&requests[0], &cwd, 3).await?;
        let first = start.elapsed();

        let mut warm = Vec::with_capacity(requests.len());
        for text in &requests {
            let t = Instant::now();
            prompt.translate(text, &cwd, 3).await?;
            warm.push(t.elapsed());
        }
        let loaded = rss_kib(pid.0);
        tokio::time::sleep(Duration::from_secs(idle_unload_sec + 3)).await;
        let unloaded = rss_kib(pid.0);
        warm.sort_unstable();

        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mib = |k: u64| k as f64 / 1024.0;
        println!("| Translate over D-Bus ({} requests, warm) | ms |\n|---|---:|", warm.len());
        println!("| p50 | {:.2} |", ms(percentile(&warm, 0.5)));
        println!("| p95 | {:.2} |", ms(percentile(&warm, 0.95)));
        println!("| max | {:.2} |", ms(percentile(&warm, 1.0)));
        println!("| first call (loads model and catalog) | {:.0} |", ms(first));
        println!("| steppps-promptd | RSS |\n|---|---:|");
        println!("| idle, nothing loaded | {:.1} MiB |", mib(idle));
        println!("| model and catalog loaded | {:.1} MiB |", mib(loaded));
        println!("| {idle_unload_sec} s after the last request (unloaded) | {:.1} MiB |", mib(unloaded));
        Ok(())
    })
}

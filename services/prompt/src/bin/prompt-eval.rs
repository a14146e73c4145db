//! Evaluates the prompt dimension on our request set (`services/prompt/eval/requests.txt`):
//! top-1 and top-3 accuracy by intent and required values, per area; "no suggestion" on
//! out-of-scope requests; an execution check (the top suggestion and the expected command run
//! in a scratch directory, read-only commands only, outputs compared); and warm latency.
//! `ci/eval-prompt` runs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use steppps_prompt::{Engine, Risk, catalog, model, sanitize};

#[derive(Debug, Parser)]
struct Args {
    /// The request set
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/requests.txt"))]
    requests: PathBuf,
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Print every failing case
    #[arg(long, short)]
    verbose: bool,
    /// Fail (exit 1) when top-1 accuracy is below this percentage
    #[arg(long, default_value_t = 0.0)]
    min_top1: f64,
    /// Fail (exit 1) when top-3 accuracy is below this percentage
    #[arg(long, default_value_t = 0.0)]
    min_top3: f64,
}

#[derive(Debug)]
struct Case {
    expect: Vec<String>,
    text: String,
    contains: Vec<String>,
    run: Option<String>,
}

fn parse(text: &str) -> anyhow::Result<Vec<Case>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(4, '|').map(str::trim).collect();
        if fields.len() < 2 {
            bail!(
                "line {}: expected `intent | request | contains | command`",
                n + 1
            );
        }
        let list = |s: Option<&&str>| -> Vec<String> {
            s.map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default()
        };
        let contains = list(fields.get(2));
        out.push(Case {
            expect: list(fields.first()),
            text: fields[1].trim().to_string(),
            contains,
            run: fields
                .get(3)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        });
    }
    Ok(out)
}

fn scratch() -> anyhow::Result<tempfile::TempDir> {
    let d = tempfile::tempdir()?;
    let p = d.path();
    let w = |f: &str, s: &str| std::fs::write(p.join(f), s);
    std::fs::create_dir_all(p.join("src/nested"))?;
    std::fs::create_dir_all(p.join("empty-dir"))?;
    std::fs::create_dir_all(p.join("docs"))?;
    w(
        "notes.txt",
        "first line\nan error here\nthird\nanother error\nlast line\n",
    )?;
    w(
        "data.csv",
        "name,count\nalpha,3\nbeta,10\ngamma,7\ndelta,1\nepsilon,2\nzeta,9\n",
    )?;
    w("names.txt", "bob\nalice\nbob\ncarol\nalice\n")?;
    w("essay.txt", "one two three four five\nsix seven\n")?;
    w("numbers.txt", "10\n9\n100\n1\n")?;
    w("a.txt", "same\nold\n")?;
    w("b.txt", "same\nnew\n")?;
    w("README.md", "Cargo workspace\nTODO: docs\n")?;
    w("config.toml", "timeout = 5\n")?;
    w("empty.log", "")?;
    w("src/main.rs", "fn main() {}\n// TODO\n")?;
    w("src/lib.rs", "pub fn f() {}\n")?;
    w("src/nested/x.py", "import os\n")?;
    w("docs/guide.md", &"text\n".repeat(200))?;
    w("big.bin", &"x".repeat(100_000))?;
    Ok(d)
}

fn run_in(dir: &Path, command: &str) -> Option<String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if start.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cases = parse(
        &std::fs::read_to_string(&args.requests)
            .with_context(|| format!("{}", args.requests.display()))?,
    )?;
    let model_dir = args.model.clone().unwrap_or_else(model::default_model_dir);
    let catalog_dir = args
        .catalog
        .clone()
        .unwrap_or_else(catalog::default_catalog_dir);
    let t = Instant::now();
    let engine = Engine::load(&model_dir, &catalog_dir)?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let dir = scratch()?;
    // Warm up (first calls allocate).
    for c in cases.iter().take(5) {
        engine.translate(&c.text, 3, Some(dir.path()))?;
    }
    let (mut top1, mut top3) = (0usize, 0usize);
    let mut per_area: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut latencies = Vec::new();
    let (mut exec_n, mut exec_ok) = (0usize, 0usize);
    for c in &cases {
        let text = sanitize(&c.text).map_err(|e| anyhow::anyhow!("{}: {e}", c.text))?;
        let t = Instant::now();
        let got = engine.translate(&text, 3, Some(dir.path()))?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        let area = c.expect[0].split('.').next().unwrap_or("?").to_string();
        let good = |s: &steppps_prompt::Suggestion| {
            c.expect.contains(&s.intent)
                && c.contains.iter().all(|x| s.command.contains(x.as_str()))
        };
        let (ok1, ok3) = if c.expect == ["none"] {
            (got.is_empty(), got.is_empty())
        } else {
            (got.first().is_some_and(good), got.iter().take(3).any(good))
        };
        top1 += usize::from(ok1);
        top3 += usize::from(ok3);
        let e = per_area.entry(area).or_default();
        e.0 += 1;
        e.1 += usize::from(ok1);
        e.2 += usize::from(ok3);
        if args.verbose && !ok1 {
            let shown: Vec<String> = got
                .iter()
                .map(|s| format!("{} [{}] {:.2}", s.command, s.intent, s.confidence))
                .collect();
            println!(
                "MISS{} {:?} want {:?} {:?}\n     got {}",
                if ok3 { " (top-3 ok)" } else { "" },
                c.text,
                c.expect,
                c.contains,
                shown.join("\n         ")
            );
        }
        if let Some(expected) = &c.run {
            exec_n += 1;
            let same = got.first().is_some_and(|s| {
                s.risk == Risk::ReadOnly && s.missing == 0 && {
                    let a = run_in(dir.path(), &s.command);
                    let b = run_in(dir.path(), expected);
                    a.is_some() && a == b
                }
            });
            exec_ok += usize::from(same);
            if args.verbose && !same {
                println!(
                    "EXEC {:?}: expected `{expected}`, got `{}`",
                    c.text,
                    got.first().map(|s| s.command.as_str()).unwrap_or("(none)")
                );
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    let n = cases.len();
    let pc = |k: usize, n: usize| 100.0 * k as f64 / n.max(1) as f64;
    println!(
        "prompt eval: {n} requests, catalog of {} intents / {} phrasings",
        engine.catalog().intents.len(),
        engine.catalog().phrasings.len()
    );
    for (area, (n, a, b)) in &per_area {
        println!(
            "  {area:<10} {n:>4}  top-1 {:>5.1} %  top-3 {:>5.1} %",
            pc(*a, *n),
            pc(*b, *n)
        );
    }
    println!("top-1 accuracy: {:.1} % ({top1}/{n})", pc(top1, n));
    println!("top-3 accuracy: {:.1} % ({top3}/{n})", pc(top3, n));
    println!(
        "execution check: {:.1} % ({exec_ok}/{exec_n}) same output as the expected command",
        pc(exec_ok, exec_n)
    );
    println!(
        "latency warm (in-process): p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        pct(0.5),
        pct(0.95),
        pct(1.0)
    );
    println!("model + catalog load: {load_ms:.0} ms");
    if pc(top1, n) < args.min_top1 || pc(top3, n) < args.min_top3 {
        bail!(
            "accuracy below the floor (top-1 ≥ {} %, top-3 ≥ {} %)",
            args.min_top1,
            args.min_top3
        );
    }
    Ok(())
}

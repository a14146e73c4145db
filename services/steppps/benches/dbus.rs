//! D-Bus latency and idle memory of the QuantumOS daemons, against a bare zbus service on the
//! same private bus (the reference: what any zbus service costs through dbus-daemon).
//!
//! Run with `ci/bench-dbus` (it builds the daemons in release mode first). Prints p50/p99 of
//! a property read and a method call for the reference, steppps-spaced and steppps-mgr, their
//! ratios to the reference, and each daemon's idle RSS.

use std::time::{Duration, Instant};

use steppps::api::dimension::Dimension1Proxy;
use steppps::api::manager::Manager1Proxy;
use steppps::api::space::Space1Proxy;
use steppps::api::{MANAGER, SPACE};
use steppps::testing::{TestBus, rss_kib, workspace_binary};
use zbus::proxy::CacheProperties;
use zbus::{Connection, interface, proxy};

const ITERATIONS: usize = 5000;
const WARMUP: usize = 300;
const REFERENCE_NAME: &str = "org.quantumos.BenchReference1";
const REFERENCE_PATH: &str = "/org/quantumos/BenchReference1";

/// The reference: a bare zbus service with one property and one method, in its own process,
/// on the same kind of runtime as the daemons (tokio, current thread).
struct Reference;

#[interface(name = "org.quantumos.BenchReference1")]
impl Reference {
    fn ping(&self) -> u32 {
        1
    }
    #[zbus(property)]
    fn value(&self) -> u32 {
        2
    }
}

#[proxy(
    interface = "org.quantumos.BenchReference1",
    default_service = "org.quantumos.BenchReference1",
    default_path = "/org/quantumos/BenchReference1"
)]
trait ReferenceClient {
    fn ping(&self) -> zbus::Result<u32>;
    #[zbus(property)]
    fn value(&self) -> zbus::Result<u32>;
}

fn serve_reference(address: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let _conn = zbus::connection::Builder::address(address)
            .name(REFERENCE_NAME)
            .serve_at(REFERENCE_PATH, Reference)
            .build()
            .await?;
        std::future::pending::<()>().await;
        Ok(())
    })
}

struct Sample {
    what: &'static str,
    reference: Option<&'static str>,
    p50: Duration,
    p99: Duration,
}

/// One kind of call to time.
type Call<'a> = Box<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = zbus::Result<()>> + 'a>> + 'a,
>;

fn call<'a, T, Fut>(f: impl Fn() -> Fut + 'a) -> Call<'a>
where
    Fut: std::future::Future<Output = zbus::Result<T>> + 'a,
{
    Box::new(move || {
        let fut = f();
        Box::pin(async move { fut.await.map(drop) })
    })
}

/// Times every call round-robin, so load on the machine during the run (other builds, CPU
/// frequency changes) affects the reference and the daemons alike and the ratios stay fair.
async fn measure_interleaved(calls: &[&Call<'_>]) -> anyhow::Result<Vec<(Duration, Duration)>> {
    for _ in 0..WARMUP {
        for c in calls {
            c().await?;
        }
    }
    let mut times = vec![Vec::with_capacity(ITERATIONS); calls.len()];
    for _ in 0..ITERATIONS {
        for (c, t) in calls.iter().zip(&mut times) {
            let start = Instant::now();
            c().await?;
            t.push(start.elapsed());
        }
    }
    Ok(times
        .into_iter()
        .map(|mut t| {
            t.sort();
            (t[ITERATIONS / 2], t[ITERATIONS * 99 / 100])
        })
        .collect())
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn uncached<'a, P: From<zbus::Proxy<'a>> + zbus::proxy::Defaults>(
    conn: &Connection,
    name: &'static str,
    path: &'static str,
) -> anyhow::Result<P> {
    Ok(zbus::proxy::Builder::<P>::new(conn)
        .destination(name)
        .path(path)
        .cache_properties(CacheProperties::No)
        .build()
        .await?)
}

fn main() -> anyhow::Result<()> {
    if let Ok(address) = std::env::var("QOS_BENCH_REFERENCE") {
        return serve_reference(&address);
    }
    // `cargo bench` passes `--bench`; nothing to parse.
    let mut bus = TestBus::start()?;
    // The reference is this binary again, started with the variable set.
    let reference = {
        let mut cmd = bus.command(std::env::current_exe()?);
        cmd.env("QOS_BENCH_REFERENCE", bus.address());
        cmd.spawn()?
    };
    let spaced = bus.spawn_daemon(&workspace_binary("steppps-spaced")?, &[])?;
    let mgr = bus.spawn_daemon(&workspace_binary("steppps-mgr")?, &[])?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let samples = rt.block_on(async {
        bus.wait_for_name(REFERENCE_NAME).await?;
        bus.wait_for_name(SPACE.bus_name).await?;
        bus.wait_for_name(MANAGER.bus_name).await?;
        let conn = bus.connect().await?;
        let reference: ReferenceClientProxy<'_> =
            uncached(&conn, REFERENCE_NAME, REFERENCE_PATH).await?;
        let space: Space1Proxy<'_> = uncached(&conn, SPACE.bus_name, SPACE.path).await?;
        let space_dim: Dimension1Proxy<'_> = uncached(&conn, SPACE.bus_name, SPACE.path).await?;
        let manager: Manager1Proxy<'_> = uncached(&conn, MANAGER.bus_name, MANAGER.path).await?;

        const PROPERTY_REF: &str = "reference: property read (Value)";
        const METHOD_REF: &str = "reference: method call (Ping)";
        let table: Vec<(&'static str, Option<&'static str>, Call<'_>)> = vec![
            (PROPERTY_REF, None, call(|| reference.value())),
            (METHOD_REF, None, call(|| reference.ping())),
            (
                "space: property read (CpuCount)",
                Some(PROPERTY_REF),
                call(|| space.cpu_count()),
            ),
            (
                "space: property read (Dimension1.State)",
                Some(PROPERTY_REF),
                call(|| space_dim.state()),
            ),
            (
                "space: method call (Dimension1.Health)",
                Some(METHOD_REF),
                call(|| space_dim.health()),
            ),
            (
                "space: method call (GetCpu)",
                Some(METHOD_REF),
                call(|| space.get_cpu()),
            ),
            (
                "manager: method call (GetStatus)",
                Some(METHOD_REF),
                call(|| manager.get_status()),
            ),
        ];
        let calls: Vec<&Call<'_>> = table.iter().map(|(_, _, c)| c).collect();
        let results = measure_interleaved(&calls).await?;
        let samples: Vec<Sample> = table
            .iter()
            .zip(results)
            .map(|((what, reference, _), (p50, p99))| Sample {
                what,
                reference: *reference,
                p50,
                p99,
            })
            .collect();
        anyhow::Ok(samples)
    })?;

    // Idle memory of every QuantumOS daemon that is built (later dimensions join without
    // changes here): started on the bus, left alone, then measured.
    let mut idle = vec![("reference (bare zbus service)".to_string(), reference.id())];
    idle.push(("steppps-spaced".into(), spaced.0));
    idle.push(("steppps-mgr".into(), mgr.0));
    for dim in steppps::api::DIMENSIONS
        .iter()
        .filter(|d| d.name != "space")
    {
        if let Ok(binary) = workspace_binary(dim.binary) {
            let pid = bus.spawn_daemon(&binary, &[])?;
            if rt.block_on(bus.wait_for_name(dim.bus_name)).is_ok() {
                idle.push((dim.binary.to_string(), pid.0));
            }
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    let rss: Vec<(String, u64)> = idle
        .into_iter()
        .map(|(name, pid)| (name, rss_kib(pid)))
        .collect();

    println!(
        "D-Bus round trips through dbus-daemon, {ITERATIONS} calls each, interleaved (after {WARMUP} warm-up rounds):\n"
    );
    println!("| call | p50 µs | p99 µs | p50 vs reference |");
    println!("|---|---:|---:|---:|");
    for s in &samples {
        let ratio = s
            .reference
            .and_then(|r| samples.iter().find(|x| x.what == r))
            .map_or("—".to_string(), |r| {
                format!("{:.2}×", us(s.p50) / us(r.p50))
            });
        println!(
            "| {} | {:.1} | {:.1} | {} |",
            s.what,
            us(s.p50),
            us(s.p99),
            ratio
        );
    }
    println!("\nIdle resident memory:\n");
    println!("| process | RSS KiB | RSS MiB |");
    println!("|---|---:|---:|");
    let total: u64 = rss.iter().skip(1).map(|(_, kib)| kib).sum();
    for (name, kib) in rss {
        println!("| {name} | {kib} | {:.1} |", kib as f64 / 1024.0);
    }
    println!(
        "| all QuantumOS daemons | {total} | {:.1} |",
        total as f64 / 1024.0
    );
    let mut reference = reference;
    let _ = reference.kill();
    let _ = reference.wait();
    Ok(())
}

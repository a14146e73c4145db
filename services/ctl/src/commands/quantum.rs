//! `qos-ctl job …`, `qos-ctl device …`, `qos-ctl circuit …`: quantum jobs, devices and the
//! circuit compiler of quantumd (`org.quantumos.Quantum1`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use steppps::api::QUANTUM;
use steppps::api::quantum::{
    DeviceInfo, DeviceStatus, JobResults, JobStatus, MAX_JOBSPEC_BYTES, Quantum1Proxy,
};

use super::print_json;
use crate::client::{Client, Failure};
use crate::table;

#[derive(Debug, clap::Subcommand)]
pub enum QuantumCommand {
    /// Quantum jobs (quantumd): submit a JobSpec, follow it, read its results
    ///
    /// Without a command: `list`.
    Job {
        #[command(subcommand)]
        command: Option<JobCommand>,
    },
    /// Quantum devices: the simulators jobs run on
    ///
    /// Without a command: `list`.
    Device {
        #[command(subcommand)]
        command: Option<DeviceCommand>,
    },
    /// Compile or validate a circuit file (OpenQASM 2/3 or AQO JSON)
    #[command(subcommand)]
    Circuit(CircuitCommand),
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum JobCommand {
    /// Submit a JobSpec YAML file (`program.path` is read relative to it), or a circuit
    /// (OpenQASM 2/3, `.aqo`) to run as it is; prints the job id(s)
    Submit {
        /// A JobSpec (`.yaml`), or a circuit: `.qasm` (OpenQASM 2 or 3) or `.aqo`
        file: PathBuf,
        /// Wait until the job ends and print its results (exit 1 unless DONE)
        #[arg(long)]
        wait: bool,
        /// Shots for a circuit file [default: 1024]; a JobSpec sets its own
        #[arg(long, value_name = "N")]
        shots: Option<u64>,
    },
    /// Show a job's state
    Status {
        /// The job's id, as `job submit` printed it
        id: String,
    },
    /// Show a finished job's results: counts as a table and a histogram, or the VQE energy
    Results {
        /// The job's id
        id: String,
    },
    /// Cancel a waiting or running job
    Cancel {
        /// The job's id
        id: String,
    },
    /// List jobs, newest first
    List {
        /// Only jobs in this state (PENDING, QUEUED, RUNNING, DONE, ERROR, CANCELLED)
        #[arg(long)]
        state: Option<String>,
        /// At most this many (0: all)
        #[arg(long, default_value_t = JOB_LIST_LIMIT)]
        limit: u32,
    },
    /// Print job state changes as they happen (one job: until it ends)
    Watch {
        /// Only this job [default: every job]
        id: Option<String>,
    },
}

/// How many jobs `job list` shows unless told.
const JOB_LIST_LIMIT: u32 = 50;

/// `qos-ctl job` alone lists the jobs, as `job list` does.
impl Default for JobCommand {
    fn default() -> Self {
        JobCommand::List {
            state: None,
            limit: JOB_LIST_LIMIT,
        }
    }
}

/// `qos-ctl device` alone lists the devices.
#[derive(Debug, Clone, Default, clap::Subcommand)]
pub enum DeviceCommand {
    /// List the devices
    #[default]
    List,
    /// Show one device: gates, coupling map, noise, queue, reservation
    Show {
        /// The device's name, as `qos-ctl device list` shows it
        name: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum CircuitCommand {
    /// Compile for a device and print the AQO JSON (the report goes to standard error)
    Compile {
        /// The circuit: OpenQASM 2 or 3, or AQO JSON
        file: PathBuf,
        /// Target device [default: sim-statevector]
        #[arg(long)]
        device: Option<String>,
        /// qasm2, qasm3 or aqo [default: from the file]
        #[arg(long)]
        format: Option<String>,
        /// Skip the optimizing passes
        #[arg(long)]
        no_optimize: bool,
    },
    /// Check a circuit file; exit 1 with line and column when it is malformed
    Validate {
        /// The circuit: OpenQASM 2 or 3, or AQO JSON
        file: PathBuf,
        /// qasm2, qasm3 or aqo [default: from the file]
        #[arg(long)]
        format: Option<String>,
    },
}

const TERMINAL: [&str; 3] = ["DONE", "ERROR", "CANCELLED"];

pub async fn run(client: &Client, cmd: &QuantumCommand, json: bool) -> Result<u8, Failure> {
    let proxy = client
        .call(&QUANTUM, Quantum1Proxy::new(&client.connection))
        .await?;
    match cmd {
        QuantumCommand::Job { command } => {
            run_job(client, &proxy, &command.clone().unwrap_or_default(), json).await
        }
        QuantumCommand::Device { command } => {
            run_device(client, &proxy, &command.clone().unwrap_or_default(), json).await
        }
        QuantumCommand::Circuit(CircuitCommand::Compile {
            file,
            device,
            format,
            no_optimize,
        }) => {
            let (source, format) = read_circuit(file, format.as_deref())?;
            let mut options = HashMap::new();
            if let Some(d) = device {
                options.insert("device".to_string(), d.clone());
            }
            if *no_optimize {
                options.insert("optimize".to_string(), "false".to_string());
            }
            let r = client
                .call(&QUANTUM, proxy.compile_circuit(&source, &format, options))
                .await?;
            if json {
                print_json(&r)?;
            } else {
                for line in &r.report {
                    eprintln!("{line}");
                }
                eprintln!(
                    "{} qubits, {} → {} gates, depth {}, {} swap(s)",
                    r.qubits, r.gates_before, r.gates_after, r.depth, r.swaps
                );
                print!("{}", r.aqo);
            }
            Ok(0)
        }
        QuantumCommand::Circuit(CircuitCommand::Validate { file, format }) => {
            let (source, format) = read_circuit(file, format.as_deref())?;
            let (ok, message, qubits, gates) = client
                .call(&QUANTUM, proxy.validate_circuit(&source, &format))
                .await?;
            if json {
                print_json(
                    &serde_json::json!({"ok": ok, "message": message, "qubits": qubits, "gates": gates}),
                )?;
            } else if ok {
                println!("{}: {message}", file.display());
            } else {
                eprintln!("{}: {message}", file.display());
            }
            Ok(if ok { 0 } else { 1 })
        }
    }
}

/// Reads a JobSpec or program, refusing before reading (and long before sending) a file over
/// quantumd's limit: the bus would drop the message and quantumd could not say why.
fn read(path: &Path) -> Result<String, Failure> {
    let fail = |e: std::io::Error| Failure::Other(anyhow::anyhow!("{}: {e}", path.display()));
    let size = std::fs::metadata(path).map_err(fail)?.len();
    check_size(&path.display().to_string(), size)?;
    let text = std::fs::read_to_string(path).map_err(fail)?;
    super::refuse_nul(path, &text)?;
    Ok(text)
}

/// `what` is over quantumd's limit on JobSpecs and programs.
fn check_size(what: &str, bytes: u64) -> Result<(), Failure> {
    if bytes > MAX_JOBSPEC_BYTES as u64 {
        return Err(Failure::Other(anyhow::anyhow!(
            "{what} is {:.1} MiB; quantumd accepts JobSpecs and programs of at most {} MiB \
             (programs named by `path:` included): use a smaller program or split the job",
            bytes as f64 / (1u64 << 20) as f64,
            MAX_JOBSPEC_BYTES >> 20
        )));
    }
    Ok(())
}

/// The source and its format (from `--format`, the extension, or the OPENQASM header).
fn read_circuit(path: &Path, format: Option<&str>) -> Result<(String, String), Failure> {
    let source = read(path)?;
    let format = match format {
        Some(f) => f.to_string(),
        None if path.extension().is_some_and(|e| e == "json" || e == "aqo") => "aqo".into(),
        None => openqasm_version(&source).unwrap_or("qasm2").into(),
    };
    Ok((source, format))
}

/// `qasm2` or `qasm3` from the `OPENQASM` header: the first line that is not blank or a
/// `//` comment.
fn openqasm_version(source: &str) -> Option<&'static str> {
    let first = source
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("//"))?;
    let version = first.strip_prefix("OPENQASM")?.trim_start();
    Some(if version.starts_with('3') {
        "qasm3"
    } else {
        "qasm2"
    })
}

/// The format of a circuit given to `job submit` in place of a JobSpec: `.aqo`, `.qasm`, or
/// an OpenQASM header. `None`: a JobSpec (JSON is YAML too, so `.json` is never taken for AQO
/// here).
fn circuit_format(path: &Path, text: &str) -> Option<&'static str> {
    if path.extension().is_some_and(|e| e == "aqo") {
        return Some("aqo");
    }
    openqasm_version(text).or_else(|| {
        path.extension()
            .is_some_and(|e| e == "qasm")
            .then_some("qasm2")
    })
}

/// The smallest JobSpec that runs a circuit file as it is: named after the file, `shots`
/// shots on the device the scheduler picks. Written as JSON, which is YAML, so the circuit
/// text needs no indenting or escaping by hand.
fn circuit_jobspec(path: &Path, source: &str, format: &str, shots: u64) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let mut name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    // quantumd refuses names that read like its own job ids (`job-12`).
    if name.is_empty() || name.starts_with("job-") {
        name = format!("circuit-{name}");
    }
    serde_json::json!({
        "apiVersion": "quantumos.io/v1",
        "kind": "QuantumJob",
        "metadata": {"name": name},
        "spec": {"program": {"format": format, "source": source}, "shots": shots},
    })
    .to_string()
}

/// Replaces `path: FILE` lines inside `program:` blocks by the file's contents (read relative
/// to the JobSpec), so quantumd never reads users' files.
pub fn inline_program_paths(spec: &str, base: &Path) -> Result<String, Failure> {
    let mut out = String::with_capacity(spec.len());
    let mut in_program: Option<usize> = None;
    for line in spec.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        if let Some(level) = in_program {
            if !trimmed.is_empty() && indent <= level {
                in_program = None;
            }
        }
        if trimmed.starts_with("program:") {
            in_program = Some(indent);
        }
        if let (Some(_), Some(rest)) = (in_program, trimmed.strip_prefix("path:")) {
            let file = rest.trim().trim_matches(|c| c == '"' || c == '\'');
            let path = base.join(file);
            let text = read(&path)?;
            let pad = " ".repeat(indent);
            let _ = writeln!(out, "{pad}source: |");
            for l in text.lines() {
                let _ = writeln!(out, "{pad}  {l}");
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

async fn run_device(
    client: &Client,
    proxy: &Quantum1Proxy<'_>,
    cmd: &DeviceCommand,
    json: bool,
) -> Result<u8, Failure> {
    match cmd {
        DeviceCommand::List => {
            let devices = client.call(&QUANTUM, proxy.list_devices()).await?;
            if json {
                print_json(&devices)?;
            } else {
                print!("{}", render_devices(&devices));
            }
            Ok(0)
        }
        DeviceCommand::Show { name } => {
            let d = client
                .call(&QUANTUM, proxy.get_device_details(name))
                .await?;
            let s = client.call(&QUANTUM, proxy.get_device_status(name)).await?;
            if json {
                print_json(&serde_json::json!({"device": d, "status": s}))?;
            } else {
                print!("{}", render_device(&d, &s));
            }
            Ok(0)
        }
    }
}

async fn run_job(
    client: &Client,
    proxy: &Quantum1Proxy<'_>,
    cmd: &JobCommand,
    json: bool,
) -> Result<u8, Failure> {
    match cmd {
        JobCommand::Submit { file, wait, shots } => {
            let text = read(file)?;
            let spec = match circuit_format(file, &text) {
                Some(format) => circuit_jobspec(file, &text, format, shots.unwrap_or(1024)),
                None if shots.is_some() => {
                    return Err(Failure::Other(anyhow::anyhow!(
                        "--shots is for a circuit file; {} is a JobSpec: set spec.shots in it",
                        file.display()
                    )));
                }
                None => {
                    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
                    inline_program_paths(&text, &base)?
                }
            };
            check_size(
                &format!("{} with its programs", file.display()),
                spec.len() as u64,
            )?;
            let ids = client.call(&QUANTUM, proxy.submit_job(&spec)).await?;
            if !*wait {
                if json {
                    print_json(&ids)?;
                } else {
                    for id in &ids {
                        println!("{id}");
                    }
                }
                return Ok(0);
            }
            let mut code = 0;
            for id in &ids {
                let status = wait_for(client, proxy, id).await?;
                if status.state != "DONE" {
                    if json {
                        print_json(&status)?;
                    } else {
                        eprintln!("{id}: {} {}", status.state, status.message);
                    }
                    code = 1;
                    continue;
                }
                let r = client.call(&QUANTUM, proxy.get_job_results(id)).await?;
                show_results(&r, json)?;
            }
            Ok(code)
        }
        JobCommand::Status { id } => {
            let s = client.call(&QUANTUM, proxy.get_job_status(id)).await?;
            if json {
                print_json(&s)?;
            } else {
                print!("{}", render_jobs(&[s]));
            }
            Ok(0)
        }
        JobCommand::Results { id } => {
            let r = client.call(&QUANTUM, proxy.get_job_results(id)).await?;
            show_results(&r, json)?;
            Ok(0)
        }
        JobCommand::Cancel { id } => {
            client.call(&QUANTUM, proxy.cancel_job(id)).await?;
            let s = client.call(&QUANTUM, proxy.get_job_status(id)).await?;
            if json {
                print_json(&s)?;
            } else {
                println!("{}: {}", s.id, s.state);
            }
            Ok(0)
        }
        JobCommand::List { state, limit } => {
            let jobs = client
                .call(
                    &QUANTUM,
                    proxy.list_jobs(state.as_deref().unwrap_or(""), *limit),
                )
                .await?;
            if json {
                print_json(&jobs)?;
            } else {
                print!("{}", render_jobs(&jobs));
            }
            Ok(0)
        }
        JobCommand::Watch { id } => {
            let mut updates = client.call(&QUANTUM, proxy.receive_job_updated()).await?;
            if let Some(id) = id {
                let s = client.call(&QUANTUM, proxy.get_job_status(id)).await?;
                println!("{} {} {}", s.id, s.state, s.message);
                if TERMINAL.contains(&s.state.as_str()) {
                    return Ok(0);
                }
            }
            while let Some(signal) = updates.next().await {
                let Ok(args) = signal.args() else { continue };
                if id.as_ref().is_some_and(|want| want != args.id()) {
                    continue;
                }
                if json {
                    print_json(
                        &serde_json::json!({"id": args.id(), "state": args.state(), "message": args.message()}),
                    )?;
                } else {
                    println!("{} {} {}", args.id(), args.state(), args.message());
                }
                if id.is_some() && TERMINAL.contains(args.state()) {
                    break;
                }
            }
            Ok(0)
        }
    }
}

/// Polls until the job ends (signals may be missed between calls; polling cannot).
async fn wait_for(
    client: &Client,
    proxy: &Quantum1Proxy<'_>,
    id: &str,
) -> Result<JobStatus, Failure> {
    let mut delay = Duration::from_millis(50);
    loop {
        let s = client.call(&QUANTUM, proxy.get_job_status(id)).await?;
        if TERMINAL.contains(&s.state.as_str()) {
            return Ok(s);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

fn show_results(r: &JobResults, json: bool) -> Result<(), Failure> {
    if json {
        let doc: serde_json::Value =
            serde_json::from_str(&r.document).unwrap_or(serde_json::Value::Null);
        return print_json(&doc);
    }
    print!("{}", render_results(r));
    Ok(())
}

fn time(ms: u64) -> String {
    let secs = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

fn render_jobs(jobs: &[JobStatus]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                j.id.clone(),
                j.name.clone(),
                j.kind.clone(),
                j.state.clone(),
                j.priority.to_string(),
                j.device.clone(),
                time(j.submitted_ms),
                table::or_dash(&j.depends_on.join(",")),
                table::or_dash(&j.message),
            ]
        })
        .collect();
    table::render(
        &[
            "jobs",
            "name",
            "kind",
            "state",
            "priority",
            "device",
            "submitted (UTC)",
            "depends on",
            "message",
        ],
        &rows,
    )
}

/// Counts as a table with a bar per outcome, or a variational job's energy.
pub fn render_results(r: &JobResults) -> String {
    let mut out = String::new();
    if !r.energy.is_nan() {
        let _ = writeln!(out, "{} on {}: energy {:.6}", r.id, r.device, r.energy);
        if !r.exact_energy.is_nan() {
            let _ = writeln!(
                out,
                "exact ground energy {:.6} (difference {:.2e})",
                r.exact_energy,
                r.energy - r.exact_energy
            );
        }
        let _ = writeln!(
            out,
            "{} iterations in {:.2} s; parameters:",
            r.iterations, r.duration_seconds
        );
        let params: Vec<String> = r.parameters.iter().map(|p| format!("{p:.4}")).collect();
        let _ = writeln!(out, "  [{}]", params.join(", "));
        return out;
    }
    let _ = writeln!(
        out,
        "{} on {}: {} shots in {:.3} s",
        r.id, r.device, r.shots, r.duration_seconds
    );
    let mut counts: Vec<(&String, &u64)> = r.counts.iter().collect();
    counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let max = counts.first().map_or(1, |c| *c.1).max(1);
    let total = r.shots.max(1) as f64;
    let shown = counts.len().min(32);
    let rows: Vec<Vec<String>> = counts[..shown]
        .iter()
        .map(|(k, v)| {
            let bar = "█".repeat(((**v as f64 / max as f64) * 40.0).round() as usize);
            vec![
                (*k).clone(),
                v.to_string(),
                format!("{:.3}", **v as f64 / total),
                bar,
            ]
        })
        .collect();
    out.push_str(&table::render(&["outcome", "count", "p", ""], &rows));
    let all = r.outcomes.max(counts.len() as u64);
    if all > shown as u64 {
        let _ = writeln!(
            out,
            "… and {} more outcomes ({})",
            all - shown as u64,
            if all > counts.len() as u64 {
                format!(
                    "--json shows the {} most frequent; all of them are in \
                     /var/lib/quantumos/quantum/jobs/{}/results.json, for root",
                    counts.len(),
                    r.id
                )
            } else {
                "--json shows all".to_string()
            }
        );
    }
    out
}

fn render_devices(devices: &[DeviceInfo]) -> String {
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                d.kind.clone(),
                d.status.clone(),
                d.max_qubits.to_string(),
                if d.native_gates.is_empty() {
                    "all".into()
                } else {
                    d.native_gates.join(",")
                },
                if d.coupling_map.is_empty() {
                    "all-to-all".into()
                } else {
                    format!("{} edges", d.coupling_map.len())
                },
            ]
        })
        .collect();
    table::render(
        &["devices", "kind", "status", "qubits", "gates", "coupling"],
        &rows,
    )
}

fn render_device(d: &DeviceInfo, s: &DeviceStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", d.name, d.description);
    let _ = writeln!(
        out,
        "  kind: {}, status: {}, qubits: {}",
        d.kind, s.status, d.max_qubits
    );
    let gates = if d.native_gates.is_empty() {
        "all".to_string()
    } else {
        d.native_gates.join(", ")
    };
    let _ = writeln!(out, "  native gates: {gates}");
    if !d.coupling_map.is_empty() {
        let edges: Vec<String> = d
            .coupling_map
            .iter()
            .map(|(a, b)| format!("{a}-{b}"))
            .collect();
        let _ = writeln!(out, "  coupling map: {}", edges.join(" "));
    }
    let mut noise: Vec<(&String, &f64)> = d.noise.iter().collect();
    noise.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in noise {
        let _ = writeln!(out, "  {k}: {v}");
    }
    let _ = writeln!(
        out,
        "  queued jobs: {}, running: {}",
        s.queued_jobs,
        table::or_dash(&s.running_job)
    );
    if !s.reserved_by.is_empty() {
        let _ = writeln!(
            out,
            "  reserved ({}…) until {} UTC",
            s.reserved_by,
            time(s.reserved_until_ms)
        );
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_circuit_file_is_told_from_a_jobspec() {
        let qasm = "// a comment first\nOPENQASM 2.0;\nqreg q[1];\n";
        assert_eq!(circuit_format(Path::new("x.qasm"), qasm), Some("qasm2"));
        assert_eq!(circuit_format(Path::new("x.txt"), qasm), Some("qasm2"));
        assert_eq!(
            circuit_format(Path::new("x"), "\n// c\nOPENQASM 3.0;\nqubit q;\n"),
            Some("qasm3")
        );
        assert_eq!(circuit_format(Path::new("c.aqo"), "{}"), Some("aqo"));
        let spec = "apiVersion: quantumos.io/v1\nkind: QuantumJob\n";
        assert_eq!(circuit_format(Path::new("bell.yaml"), spec), None);
        assert_eq!(
            circuit_format(Path::new("bell.json"), "{\"kind\": \"QuantumJob\"}"),
            None
        );
    }

    #[test]
    fn a_circuit_file_becomes_the_smallest_jobspec() {
        let qasm = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[1];\n";
        let spec = circuit_jobspec(Path::new("/tmp/my bell.qasm"), qasm, "qasm2", 100);
        let v: serde_json::Value = serde_json::from_str(&spec).unwrap();
        assert_eq!(v["metadata"]["name"], "my-bell");
        assert_eq!(v["spec"]["program"]["source"], qasm);
        assert_eq!(v["spec"]["program"]["format"], "qasm2");
        assert_eq!(v["spec"]["shots"], 100);
        let spec = circuit_jobspec(Path::new("job-7.qasm"), qasm, "qasm2", 1);
        assert!(spec.contains("\"circuit-job-7\""), "{spec}");
    }

    #[test]
    fn program_paths_are_inlined_relative_to_the_spec() {
        let dir = std::env::temp_dir().join(format!("qos-ctl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("c.qasm"), "OPENQASM 2.0;\nqreg q[1];\n").unwrap();
        let spec = "spec:\n  program:\n    format: qasm2\n    path: c.qasm\n  shots: 10\n";
        let out = inline_program_paths(spec, &dir).unwrap();
        assert_eq!(
            out,
            "spec:\n  program:\n    format: qasm2\n    source: |\n      OPENQASM 2.0;\n      qreg q[1];\n  shots: 10\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn histogram_orders_by_count() {
        let r = JobResults {
            id: "job-1".into(),
            device: "sim-statevector".into(),
            shots: 4,
            counts: HashMap::from([("00".to_string(), 1), ("11".to_string(), 3)]),
            energy: f64::NAN,
            ..JobResults::default()
        };
        let text = render_results(&r);
        let first = text.lines().nth(2).unwrap();
        assert!(first.starts_with("11"), "{text}");
        assert!(first.contains("████"), "{text}");
        assert!(!text.contains("more outcomes"), "{text}");
    }

    #[test]
    fn cut_counts_say_where_the_rest_is() {
        let r = JobResults {
            id: "job-7".into(),
            shots: 1_000_000,
            counts: (0..40).map(|i| (format!("{i:020b}"), 2)).collect(),
            outcomes: 632_000,
            energy: f64::NAN,
            ..JobResults::default()
        };
        let text = render_results(&r);
        assert!(
            text.contains("… and 631968 more outcomes (--json shows the 40 most frequent")
                && text.contains("/var/lib/quantumos/quantum/jobs/job-7/results.json"),
            "{text}"
        );
    }
}

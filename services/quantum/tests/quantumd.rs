//! quantumd as a real process on a private bus, driven through the shared proxy and qos-ctl:
//! the examples, bad input, cancellation, dependencies, and a SIGKILL in the middle of 100 jobs.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use steppps::api::QUANTUM;
use steppps::api::dimension::dimension_proxy;
use steppps::api::quantum::Quantum1Proxy;
use steppps::testing::{DaemonPid, TestBus, workspace_binary};
use zbus::Connection;

fn root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/quantum")
}

async fn start(bus: &mut TestBus) -> DaemonPid {
    let pid = bus
        .spawn_daemon(&workspace_binary("quantumd").unwrap(), &[])
        .unwrap();
    bus.wait_for_name(QUANTUM.bus_name).await.unwrap();
    pid
}

/// quantumd on a private bus and a connection to it, for a test that submits: uid 0 stands in
/// for polkit. `None`, and the test skips, when not root.
async fn quantumd_as_root() -> Option<(TestBus, DaemonPid, Connection)> {
    if !root() {
        eprintln!("skipped: submitting needs uid 0 when polkit is absent");
        return None;
    }
    let mut bus = TestBus::start().unwrap();
    let pid = start(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    Some((bus, pid, conn))
}

async fn proxy(conn: &Connection) -> Quantum1Proxy<'_> {
    Quantum1Proxy::new(conn).await.unwrap()
}

async fn wait_done(q: &Quantum1Proxy<'_>, id: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let s = q.get_job_status(id).await.unwrap();
        if ["DONE", "ERROR", "CANCELLED"].contains(&s.state.as_str()) {
            return s.state;
        }
        assert!(
            Instant::now() < deadline,
            "{id} still {} after {timeout:?}",
            s.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn error_of(e: zbus::Error) -> (String, String) {
    let (name, message) = steppps::error::describe_remote(&e);
    (name.unwrap_or_default(), message)
}

fn qos_ctl(bus: &TestBus, args: &[&str]) -> (i32, String, String) {
    let out = bus
        .command(workspace_binary("qos-ctl").unwrap())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn devices_compile_and_validate_are_open_to_everyone() {
    let mut bus = TestBus::start().unwrap();
    start(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let q = proxy(&conn).await;
    let devices = q.list_devices().await.unwrap();
    let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["sim-statevector", "sim-noisy"]);
    let noisy = q.get_device_details("sim-noisy").await.unwrap();
    assert_eq!(noisy.native_gates, ["u3", "cx"]);
    assert!(q.get_device_details("ibm").await.is_err());

    let src = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[3];\nh q[0];\ncx q[0], q[2];\nh q[1];\nh q[1];\n";
    let opts = HashMap::from([("device".to_string(), "sim-noisy".to_string())]);
    let a = q.compile_circuit(src, "qasm2", opts.clone()).await.unwrap();
    let b = q.compile_circuit(src, "qasm2", opts).await.unwrap();
    assert_eq!(a.aqo, b.aqo, "compilation is deterministic");
    assert_eq!(a.swaps, 1, "{:?}", a.report);
    assert!(
        a.aqo.contains("\"U3\"") && !a.aqo.contains("\"H\""),
        "{}",
        a.aqo
    );
    let o = q.optimize_circuit(src, "qasm2").await.unwrap();
    assert_eq!(o.gates_after, 2, "H H cancels: {:?}", o.report);

    // Anyone may compile, so the reply must stay sendable: 30 000 Toffolis routed on the noisy
    // device's line are over 16 MiB of AQO. Refused by name, and quantumd stays on the bus.
    let mut toffolis = String::from("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[16];\n");
    for i in 0..30_000 {
        toffolis.push_str(&format!(
            "ccx q[{}],q[{}],q[{}];\n",
            i % 16,
            (i + 5) % 16,
            (i + 11) % 16
        ));
    }
    let noisy = HashMap::from([("device".to_string(), "sim-noisy".to_string())]);
    let e = q
        .compile_circuit(&toffolis, "qasm2", noisy)
        .await
        .unwrap_err();
    let (name, message) = error_of(e);
    assert_eq!(name, "org.quantumos.Error.InvalidArgument", "{message}");
    assert!(message.contains("more than a reply may carry"), "{message}");
    assert_eq!(q.list_devices().await.unwrap().len(), 2);

    let (ok, msg, _, _) = q
        .validate_circuit("OPENQASM 2.0;\nqreg q[1];\nfoo q[0];", "qasm2")
        .await
        .unwrap();
    assert!(!ok);
    assert!(
        msg.contains("line 3, column 1") && msg.contains("unknown gate `foo`"),
        "{msg}"
    );
    // The verdict is a success reply: a NUL from the caller's JSON, quoted in it, must not
    // reach the bus (quantumd would be disconnected), nor a 7 MiB token in full.
    let (ok, msg, _, _) = q
        .validate_circuit(r#"{"format": "\u0000x", "qubits": 1, "ops": []}"#, "aqo")
        .await
        .unwrap();
    assert!(!ok && msg.contains("\u{FFFD}x"), "{msg}");
    let huge = format!("OPENQASM 2.0;\nqreg q[1];\n{} q[0];", "g".repeat(7 << 20));
    let (ok, msg, _, _) = q.validate_circuit(&huge, "qasm2").await.unwrap();
    assert!(!ok && msg.len() < 64 << 10, "{} bytes", msg.len());
    assert!(msg.contains("unknown gate `ggg"), "{}", &msg[..80]);
    assert_eq!(q.list_devices().await.unwrap().len(), 2);

    let out = bus
        .busctl(&["introspect", QUANTUM.bus_name, QUANTUM.path])
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        ".SubmitJob",
        ".JobUpdated",
        ".ReserveDevice",
        ".CompileCircuit",
        "org.quantumos.Dimension1",
    ] {
        assert!(text.contains(needle), "introspection lacks {needle}");
    }
}

#[tokio::test]
async fn examples_run_through_qos_ctl() {
    let Some((bus, _, _conn)) = quantumd_as_root().await else {
        return;
    };
    let ex = examples();

    // The VQE examples, 4 and 8 spins: energy within 1e-3 of exact diagonalization.
    for (file, below) in [("vqe-ising.yaml", -3.0), ("vqe-ising-8.yaml", -7.0)] {
        let (code, out, err) = qos_ctl(
            &bus,
            &[
                "--json",
                "--timeout",
                "120",
                "job",
                "submit",
                ex.join(file).to_str().unwrap(),
                "--wait",
            ],
        );
        assert_eq!(code, 0, "{file}: {out}{err}\n{}", bus.log("quantumd"));
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let (e, exact) = (
            doc["energy"].as_f64().unwrap(),
            doc["exact_energy"].as_f64().unwrap(),
        );
        assert!((e - exact).abs() < 1e-3, "{file}: VQE {e} vs exact {exact}");
        assert!(exact < below, "{file}: {exact}");
    }

    let run = |file: &str| {
        let (code, out, err) = qos_ctl(
            &bus,
            &[
                "--json",
                "job",
                "submit",
                ex.join(file).to_str().unwrap(),
                "--wait",
            ],
        );
        assert_eq!(code, 0, "{file}: {out}{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let bell = run("bell.yaml");
    let counts = bell["counts"].as_object().unwrap();
    assert_eq!(counts.keys().collect::<Vec<_>>(), ["00", "11"]);
    let grover = run("grover.yaml");
    let hits = grover["counts"]["101"].as_u64().unwrap();
    assert!(hits > 1800, "Grover found 101 in {hits}/2000");
    let qft = run("qft.yaml");
    assert_eq!(qft["counts"]["0101"].as_u64(), Some(500), "{qft}");
    assert!((qft["metadata"]["expectations"]["z0"].as_f64().unwrap() + 1.0).abs() < 1e-9);
    let ghz = run("ghz.yaml");
    assert_eq!(ghz["device"], "sim-noisy");
    let c = ghz["counts"].as_object().unwrap();
    let good = c.get("00000").and_then(|v| v.as_u64()).unwrap_or(0)
        + c.get("11111").and_then(|v| v.as_u64()).unwrap_or(0);
    assert!(
        good > 1500 && good < 2000,
        "noise should cost some shots, not most: {good}"
    );

    // The table view and the histogram.
    let (code, out, _) = qos_ctl(&bus, &["job", "results", "bell"]);
    assert_eq!(code, 0);
    assert!(out.contains("outcome") && out.contains('█'), "{out}");
    let (code, out, _) = qos_ctl(&bus, &["job", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("vqe-ising") && out.contains("DONE"), "{out}");
    let (code, out, _) = qos_ctl(&bus, &["device", "show", "sim-noisy"]);
    assert_eq!(code, 0);
    assert!(out.contains("coupling map: 0-1"), "{out}");
    let (code, _, err) = qos_ctl(
        &bus,
        &["circuit", "validate", ex.join("qft.qasm").to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");

    // A circuit file submitted as it is (its first lines are comments): named after the file,
    // the shots asked for. QFT then inverse QFT of |0101> reads 0101 every time.
    let (code, out, err) = qos_ctl(
        &bus,
        &[
            "--json",
            "job",
            "submit",
            ex.join("qft.qasm").to_str().unwrap(),
            "--shots",
            "64",
            "--wait",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let circuit: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(circuit["name"], "qft", "{circuit}");
    assert_eq!(circuit["counts"]["0101"].as_u64(), Some(64), "{circuit}");
    // --shots belongs to circuits; a JobSpec sets its own.
    let (code, _, err) = qos_ctl(
        &bus,
        &[
            "job",
            "submit",
            ex.join("bell.yaml").to_str().unwrap(),
            "--shots",
            "5",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("set spec.shots"), "{err}");

    // Dependencies: `analyse` waits for `prepare`.
    let (code, out, err) = qos_ctl(
        &bus,
        &[
            "--json",
            "job",
            "submit",
            ex.join("pipeline.yaml").to_str().unwrap(),
            "--wait",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let conn = bus.connect().await.unwrap();
    let q = proxy(&conn).await;
    let prepare = q.get_job_status("prepare").await.unwrap();
    let analyse = q.get_job_status("analyse").await.unwrap();
    assert_eq!(analyse.depends_on, std::slice::from_ref(&prepare.id));
    assert!(analyse.updated_ms >= prepare.updated_ms);
    // Artifacts per job.
    let dir = bus.dir().join("state/quantumd/jobs").join(&prepare.id);
    for f in [
        "spec.json",
        "source.aqo.json",
        "compiled.aqo.json",
        "results.json",
        "log.txt",
    ] {
        assert!(dir.join(f).is_file(), "missing artifact {f}");
    }
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_daemon_keeps_running() {
    let Some((bus, _, conn)) = quantumd_as_root().await else {
        return;
    };
    let q = proxy(&conn).await;
    let job = |program: &str, extra: &str| {
        format!(
            "apiVersion: quantumos.io/v1\nkind: QuantumJob\nmetadata: {{name: j}}\nspec:\n  program:\n    format: qasm2\n    source: |\n{}\n{extra}",
            program
                .lines()
                .map(|l| format!("      {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    let ok = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[1];\ncreg c[1];\nh q[0];\nmeasure q[0] -> c[0];";
    let cases: Vec<(String, &str)> = vec![
        (job("OPENQASM 2.0;\nqreg q[1]\nh q[0];", ""), "line 3, column 1"),
        (job("OPENQASM 2.0;\nqreg q[1];\nfoo q[0];", ""), "unknown gate `foo`"),
        (job("OPENQASM 2.0;\nqreg q[60];\nh q[0];", ""), "16.0 EiB"),
        (job(ok, "  shots: -5"), "spec.shots: -5 is out of range"),
        (job(ok, "  dependsOn: [j]"), "cycle"),
        ("kind: [unclosed".to_string(), "line"),
        ("apiVersion: quantumos.io/v1\nkind: QuantumJob\nmetadata: {name: a}\nspec:\n  program: {format: aqo, source: '{\"qubits\": 1, \"ops\": [{\"op\": \"FOO\", \"qubits\": [0]}]}'}\n".to_string(), "ops[0].op: unknown operation `FOO`"),
        // YAML's escape for NUL, quoted back in the message: sent as is, dbus-daemon would
        // drop quantumd from the bus for it.
        (job(ok, "").replace("name: j", "name: \"x\\0y\""), "`x\\0y` must be"),
    ];
    for (spec, want) in cases {
        let (name, message) = error_of(q.submit_job(&spec).await.unwrap_err());
        assert_eq!(name, "org.quantumos.Error.InvalidArgument", "{message}");
        assert!(message.contains(want), "wanted `{want}` in: {message}");
    }
    // A cycle across documents of one submission.
    let a = job(ok, "  dependsOn: [b]").replace("name: j", "name: a");
    let b = job(ok, "  dependsOn: [a]").replace("name: j", "name: b");
    let (_, message) = error_of(q.submit_job(&format!("{a}\n---\n{b}")).await.unwrap_err());
    assert!(message.contains("a cycle: a → b → a"), "{message}");
    // A 9 MB upload: refused by quantumd itself, naming the limit.
    let big = format!("{}\n# {}\n", job(ok, ""), "x".repeat(9 << 20));
    let (name, message) = error_of(q.submit_job(&big).await.unwrap_err());
    assert_eq!(name, "org.quantumos.Error.InvalidArgument", "{message}");
    assert!(message.contains("the limit is 8 MiB"), "{message}");
    // A 50 MB upload: the bus itself refuses a message that large (dbus-daemon's 32 MiB
    // max_message_size) and drops the sender; quantumd never sees it.
    let big = format!("{}\n# {}\n", job(ok, ""), "x".repeat(50 << 20));
    assert!(
        q.submit_job(&big).await.is_err(),
        "a 50 MB JobSpec was accepted"
    );
    // qos-ctl refuses it before sending, naming the size and the limit: a 50 MB JobSpec, and
    // a small JobSpec whose `program.path` names a 9 MB program.
    let dir = tempfile::tempdir().unwrap();
    let big_file = dir.path().join("big.yaml");
    std::fs::write(&big_file, &big).unwrap();
    let (code, out, err) = qos_ctl(&bus, &["job", "submit", big_file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("is 50.0 MiB") && err.contains("at most 8 MiB"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("big.qasm"),
        format!("{ok}\n// {}\n", "x".repeat(9 << 20)),
    )
    .unwrap();
    let by_path = dir.path().join("by-path.yaml");
    std::fs::write(
        &by_path,
        "apiVersion: quantumos.io/v1\nkind: QuantumJob\nmetadata: {name: j}\nspec:\n  program:\n    format: qasm2\n    path: big.qasm\n",
    )
    .unwrap();
    let (code, out, err) = qos_ctl(&bus, &["job", "submit", by_path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("big.qasm is 9.0 MiB") && err.contains("at most 8 MiB"),
        "{err}"
    );
    // A binary file given by mistake: qos-ctl says so instead of losing the bus.
    let binary = dir.path().join("a.out");
    std::fs::write(&binary, b"\x7fELF\x02\x01\x01\0\0\0").unwrap();
    let (code, out, err) = qos_ctl(&bus, &["job", "submit", binary.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("a.out: not a text file"), "{err}");
    drop(q);
    let conn = bus.connect().await.unwrap();
    let q = proxy(&conn).await;
    // Still alive, nothing queued, and a good job still runs.
    let d = dimension_proxy(&conn, &QUANTUM).await.unwrap();
    assert!(d.health().await.unwrap().0);
    assert!(q.list_jobs("", 0).await.unwrap().is_empty());
    let ids = q.submit_job(&job(ok, "  shots: 10")).await.unwrap();
    assert_eq!(
        wait_done(&q, &ids[0], Duration::from_secs(30)).await,
        "DONE"
    );
}

/// 20 qubits in uniform superposition and a million shots: about 630 000 distinct outcomes,
/// 40 MB of counts. Sent whole, the reply would be over the bus's 32 MiB and dbus-daemon would
/// disconnect quantumd; it sends the most frequent outcomes and says how many there were.
#[tokio::test]
async fn results_too_large_for_one_message_are_cut_to_the_most_frequent() {
    let Some((_bus, _, conn)) = quantumd_as_root().await else {
        return;
    };
    let q = proxy(&conn).await;
    let hadamards: String = (0..20).map(|i| format!("      h q[{i}];\n")).collect();
    let spec = format!(
        "apiVersion: quantumos.io/v1\nkind: QuantumJob\nmetadata: {{name: wide}}\nspec:\n  program:\n    format: qasm2\n    source: |\n      OPENQASM 2.0;\n      include \"qelib1.inc\";\n      qreg q[20];\n      creg c[20];\n{hadamards}      measure q -> c;\n  shots: 1000000\n  seed: 1\n"
    );
    let ids = q.submit_job(&spec).await.unwrap();
    assert_eq!(
        wait_done(&q, &ids[0], Duration::from_secs(120)).await,
        "DONE"
    );
    let r = q.get_job_results(&ids[0]).await.unwrap();
    assert_eq!(r.shots, 1_000_000);
    assert!(r.outcomes > 500_000, "{} outcomes", r.outcomes);
    let kept = r.counts.len() as u64;
    assert!(
        kept > 100_000 && kept < r.outcomes,
        "{kept} of {}",
        r.outcomes
    );
    let doc: serde_json::Value = serde_json::from_str(&r.document).unwrap();
    assert!(doc.get("counts").is_none());
    assert_eq!(doc["shots"], 1_000_000);
    // Still on the bus.
    assert_eq!(q.get_job_status(&ids[0]).await.unwrap().state, "DONE");
}

#[tokio::test]
async fn cancel_and_reservations() {
    let Some((_bus, _, conn)) = quantumd_as_root().await else {
        return;
    };
    let q = proxy(&conn).await;
    let token = q.reserve_device("sim-statevector", 60).await.unwrap();
    let spec = |name: &str, reservation: &str| {
        format!(
            "apiVersion: quantumos.io/v1\nkind: QuantumJob\nmetadata: {{name: {name}}}\nspec:\n  program: {{format: qasm2, source: 'OPENQASM 2.0; include \"qelib1.inc\"; qreg q[1]; creg c[1]; x q[0]; measure q[0] -> c[0];'}}\n  target: {{device: sim-statevector{reservation}}}\n  shots: 5\n"
        )
    };
    let waiting = q.submit_job(&spec("waits", "")).await.unwrap().remove(0);
    let holder = q
        .submit_job(&spec("holder", &format!(", reservation: {token}")))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        wait_done(&q, &holder, Duration::from_secs(30)).await,
        "DONE"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        q.get_job_status(&waiting).await.unwrap().state,
        "QUEUED",
        "the reservation holds other jobs back"
    );
    assert_eq!(
        q.get_device_status("sim-statevector").await.unwrap().status,
        "reserved"
    );
    q.cancel_job(&waiting).await.unwrap();
    assert_eq!(q.get_job_status(&waiting).await.unwrap().state, "CANCELLED");
    let (name, _) = error_of(q.cancel_job(&waiting).await.unwrap_err());
    assert_eq!(name, "org.quantumos.Error.Busy");
    let r = q.get_job_results(&holder).await.unwrap();
    assert_eq!(r.counts.get("1"), Some(&5));
}

#[tokio::test]
async fn sigkill_during_a_run_of_100_jobs_loses_none() {
    let Some((mut bus, pid, conn)) = quantumd_as_root().await else {
        return;
    };
    let q = proxy(&conn).await;
    let mut docs = Vec::new();
    for i in 0..100 {
        docs.push(format!(
            "apiVersion: quantumos.io/v1\nkind: QuantumJob\nmetadata: {{name: run-{i}}}\nspec:\n  program: {{format: qasm2, source: 'OPENQASM 2.0; include \"qelib1.inc\"; qreg q[12]; creg c[12]; h q; cx q[0], q[11]; rz(0.3) q[5]; h q; h q; measure q -> c;'}}\n  shots: 2000\n  seed: {i}\n"
        ));
    }
    let ids = q.submit_job(&docs.join("---\n")).await.unwrap();
    assert_eq!(ids.len(), 100);
    // Let some finish, then kill -9 in the middle.
    let deadline = Instant::now() + Duration::from_secs(60);
    while q.list_jobs("DONE", 0).await.unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "no job finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bus.signal(pid, Signal::SIGKILL).unwrap();
    bus.wait_exit(pid, Duration::from_secs(10)).unwrap();
    drop(q);
    drop(conn);
    start(&mut bus).await;
    let conn = bus.connect().await.unwrap();
    let q = proxy(&conn).await;
    let all = q.list_jobs("", 0).await.unwrap();
    assert_eq!(all.len(), 100, "jobs were lost");
    let done_before = all.iter().filter(|j| j.state == "DONE").count();
    assert!(done_before < 100, "the kill came too late to test anything");
    for id in &ids {
        assert_eq!(
            wait_done(&q, id, Duration::from_secs(120)).await,
            "DONE",
            "{id}"
        );
    }
    let r = q.get_job_results(&ids[99]).await.unwrap();
    assert_eq!(r.counts.values().sum::<u64>(), 2000);
}

/// The shipped D-Bus policy lets root own the name and anyone call it; without polkit, a
/// non-root caller may read but not submit.
#[tokio::test]
async fn shipped_policy_and_authorization() {
    if !root()
        || std::process::Command::new("setpriv")
            .arg("--version")
            .output()
            .is_err()
    {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let policy = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../recipes/quantumos/usr/share/dbus-1/system.d/org.quantumos.Quantum1.conf");
    let mut bus = TestBus::start_with_policies(&[&policy]).unwrap();
    start(&mut bus).await;
    let as_nobody = |args: &[&str]| {
        let out = bus
            .command("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "busctl"])
            .arg(format!("--address={}", bus.address()))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = as_nobody(&[
        "call",
        QUANTUM.bus_name,
        QUANTUM.path,
        QUANTUM.interface,
        "ListDevices",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("sim-statevector"), "{out}");
    let (ok, out) = as_nobody(&[
        "call",
        QUANTUM.bus_name,
        QUANTUM.path,
        QUANTUM.interface,
        "SubmitJob",
        "s",
        "x",
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("org.quantumos.quantum.submit"), "{out}");
}

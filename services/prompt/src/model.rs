//! The sentence-embedding model: all-MiniLM-L6-v2 (a 6-layer BERT) on the CPU with candle,
//! mean pooling over the attention mask and L2 normalization, exactly as sentence-transformers
//! computes it. A batch is padded to its longest sequence, never to the tokenizer file's fixed
//! 128 (or the model's 512), so a five-word query costs a five-word forward pass.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Embedding width of all-MiniLM-L6-v2.
pub const DIM: usize = 384;

/// sentence-transformers' `max_seq_length` for this model: longer inputs are truncated.
const MAX_TOKENS: usize = 256;

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Where the image installs the model, and where `ci/fetch-model` puts it in a checkout.
pub const SYSTEM_MODEL_DIR: &str = "/usr/share/quantumos/models/all-MiniLM-L6-v2";

/// The model directory to use: `$QOS_PROMPT_MODEL_DIR`, else the installed one, else the
/// checkout's `target/models/all-MiniLM-L6-v2` (found from the crate's manifest directory).
pub fn default_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QOS_PROMPT_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let system = PathBuf::from(SYSTEM_MODEL_DIR);
    if system.join("model.safetensors").exists() {
        return system;
    }
    checkout_models_dir().join("all-MiniLM-L6-v2")
}

/// `target/models` of the source checkout this crate was built from.
pub fn checkout_models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/models")
        .components()
        .collect()
}

/// The model and catalog directories for tests that need the real weights: `None` (the test
/// says it skips) when `ci/fetch-model` has not run, unless `QOS_REQUIRE_MODEL=1` (CI, after
/// fetching), where a missing model is a failure rather than a silent skip.
#[doc(hidden)]
pub fn dirs_for_tests() -> Option<(PathBuf, PathBuf)> {
    let (m, c) = (default_model_dir(), crate::catalog::default_catalog_dir());
    if m.join("model.safetensors").is_file() && c.join("catalog.json").is_file() {
        return Some((m, c));
    }
    assert!(
        std::env::var("QOS_REQUIRE_MODEL").as_deref() != Ok("1"),
        "QOS_REQUIRE_MODEL=1 but no model/catalog at {} / {}",
        m.display(),
        c.display()
    );
    eprintln!("skipped: no model (run ci/fetch-model)");
    None
}

/// A loaded embedding model.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        for f in MODEL_FILES {
            if !dir.join(f).is_file() {
                bail!(
                    "{}: missing {f} (run ci/fetch-model, or install the model under {SYSTEM_MODEL_DIR})",
                    dir.display()
                );
            }
        }
        let device = Device::Cpu;
        let config: Config = serde_json::from_str(
            &std::fs::read_to_string(dir.join("config.json"))
                .with_context(|| format!("{}/config.json", dir.display()))?,
        )
        .with_context(|| format!("{}/config.json: not a BERT config", dir.display()))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| anyhow::anyhow!("{}/tokenizer.json: {e}", dir.display()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| anyhow::anyhow!("tokenizer truncation: {e}"))?;
        // Memory-mapping would be faster still, but needs `unsafe`; reading 90 MB is ~30 ms.
        let bytes = std::fs::read(dir.join("model.safetensors"))
            .with_context(|| format!("{}/model.safetensors", dir.display()))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
            .with_context(|| format!("{}/model.safetensors", dir.display()))?;
        let model = BertModel::load(vb, &config).context("model.safetensors: not a BERT model")?;
        Ok(Self {
            model,
            tokenizer,
            device,
        })
    }

    /// Embeds one text: a unit vector of `DIM` floats.
    pub fn embed(&self, text: &str) -> anyhow::Result<Vec<f32>> {
        let mut v = self.embed_batch(&[text])?;
        Ok(v.pop().unwrap_or_default())
    }

    /// Embeds a batch of texts, padded to the batch's longest sequence.
    pub fn embed_batch(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
        let len = encodings.first().map(|e| e.get_ids().len()).unwrap_or(0);
        let n = encodings.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &encodings {
            ids.extend(e.get_ids().iter().copied());
            mask.extend(e.get_attention_mask().iter().copied());
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // (n, len, DIM)
        let maskf = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
        let summed = hidden.broadcast_mul(&maskf)?.sum(1)?; // (n, DIM)
        let counts = maskf.sum(1)?.clamp(1e-9, f64::MAX)?; // (n, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norm)?;
        Ok(unit.to_vec2::<f32>()?)
    }
}

/// Dot product of two equal-length vectors (cosine for unit vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

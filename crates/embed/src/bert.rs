//! The BERT encoder of a sentence-transformers model, as `transformers`' `BertModel` computes it
//! (absolute positions, post-layer-norm blocks), run on [`kernels`](super::kernels).
//!
//! Sequences are not padded: the linear layers take every token of a batch as one matrix, and
//! attention runs per sequence over its own tokens, so a batch of mixed lengths computes nothing
//! for padding and needs no mask.

use std::collections::HashMap;
use std::path::Path;

use super::kernels::{dot, Linear};

/// How token vectors become one sentence vector (`1_Pooling/config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The average of the tokens' vectors (all-MiniLM, e5, multilingual MiniLM).
    Mean,
    /// The first token's vector (bge).
    Cls,
}

/// What `config.json` says of the encoder.
#[derive(Debug, Clone, serde::Deserialize)]
pub(crate) struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_types")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_position_kind")]
    pub position_embedding_type: String,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_positions() -> usize {
    512
}
fn default_types() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_position_kind() -> String {
    "absolute".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    /// `transformers`' "gelu": the exact one, with erf.
    Gelu,
    /// "gelu_new", "gelu_pytorch_tanh", "gelu_fast": the tanh approximation.
    GeluTanh,
    Relu,
}

impl Activation {
    fn named(name: &str) -> Option<Activation> {
        match name {
            "gelu" => Some(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Activation::GeluTanh),
            "relu" => Some(Activation::Relu),
            _ => None,
        }
    }

    fn apply(self, values: &mut [f32]) {
        wide::run(
            #[inline(always)]
            || self.apply_here(values),
        )
    }

    #[inline(always)]
    fn apply_here(self, values: &mut [f32]) {
        match self {
            Activation::Gelu => {
                values.iter_mut().for_each(|v| *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2)))
            }
            Activation::GeluTanh => values.iter_mut().for_each(|v| {
                let u = 0.797_884_6 * (*v + 0.044_715 * *v * *v * *v);
                *v = 0.5 * *v * (1.0 + tanh(u));
            }),
            Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
    }
}

/// `e^x` to about 1e-7 relative, without a library call, so loops over it vectorise (softmax
/// and GELU take an exponential per score and per activation).
#[inline(always)]
fn exp(x: f32) -> f32 {
    // Rounding by adding and taking away 1.5 × 2^23 (exact for these magnitudes) compiles to
    // two additions; `f32::round` is a library call on baseline x86-64.
    const ROUND: f32 = 12_582_912.0;
    // Not `clamp`: its NaN rules cost compares and blends in the loop; max/min map to one
    // instruction each (a NaN becomes a bound, and a NaN input is already a broken model).
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln 2 in two parts, so that the reduction loses no precision.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// erf to about 1.2e-7 (the Chebyshev fit of erfc in Numerical Recipes, § 6.2).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204 + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * exp(-z * z + poly);
    if x >= 0.0 {
        1.0 - erfc
    } else {
        erfc - 1.0
    }
}

#[inline(always)]
fn tanh(u: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * u) + 1.0)
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// Each row of `x` to zero mean and unit variance, then scaled and shifted.
    fn apply(&self, x: &mut [f32]) {
        let h = self.weight.len();
        for row in x.chunks_exact_mut(h) {
            let mean = row.iter().sum::<f32>() / h as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

struct Layer {
    /// Query, key and value in one product: each token's row is `[q | k | v]`.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

pub(crate) struct Bert {
    hidden: usize,
    heads: usize,
    activation: Activation,
    /// `vocab` rows of `hidden`, in half precision: the table is half the model's weights, a
    /// question reads a few of its rows, and the rounding (2^-11 relative) is far below what
    /// the layer norm after it could show (see the reference test).
    word: Vec<u16>,
    /// `max_position_embeddings` rows of `hidden`.
    position: Vec<f32>,
    /// Token type 0's row (every token is of type 0 in a single-text input), zeros if none.
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

/// A tensor's dtype, shape and byte range in the file.
type TensorInfo = (String, Vec<usize>, (usize, usize));

/// Tensors of a `.safetensors` file, by name, converted to f32 on request.
struct SafeTensors {
    data: Vec<u8>,
    index: HashMap<String, TensorInfo>,
    /// Prepended to names (`bert.` in checkpoints saved from a task model).
    prefix: String,
}

impl SafeTensors {
    fn read(path: &Path) -> Result<SafeTensors, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
        let Some(len) = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize) else {
            return Err("it is shorter than a safetensors header".into());
        };
        let header_end = 8usize.checked_add(len).filter(|&e| e <= bytes.len()).ok_or("its header is cut off")?;
        let header: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..header_end]).map_err(|e| format!("its header is not JSON: {e}"))?;
        let data_len = bytes.len() - header_end;
        let mut index = HashMap::new();
        for (name, info) in header {
            if name == "__metadata__" {
                continue;
            }
            let dtype = info.get("dtype").and_then(|d| d.as_str()).unwrap_or("").to_string();
            let shape: Vec<usize> = info
                .get("shape")
                .and_then(|s| s.as_array())
                .map(|a| a.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect())
                .unwrap_or_default();
            let range = info.get("data_offsets").and_then(|o| o.as_array()).and_then(|o| match o.as_slice() {
                [a, b] => Some((a.as_u64()? as usize, b.as_u64()? as usize)),
                _ => None,
            });
            let Some((from, to)) = range.filter(|&(a, b)| a <= b && b <= data_len) else {
                return Err(format!("tensor {name} lies outside the file"));
            };
            index.insert(name, (dtype, shape, (header_end + from, header_end + to)));
        }
        let prefix = ["", "bert.", "model."]
            .into_iter()
            .find(|p| index.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
            .ok_or("it has no embeddings.word_embeddings.weight: not a BERT encoder")?
            .to_string();
        Ok(SafeTensors { data: bytes, index, prefix })
    }

    /// The tensor `name` (under the prefix) as f32, checked to have `shape`.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let full = format!("{}{name}", self.prefix);
        let (dtype, got, (from, to)) = self.index.get(&full).ok_or_else(|| format!("it has no tensor {full}"))?;
        if got.as_slice() != shape {
            return Err(format!("{full} has shape {got:?}, the config implies {shape:?}"));
        }
        let bytes = &self.data[*from..*to];
        let count: usize = shape.iter().product();
        let width = match dtype.as_str() {
            "F32" => 4,
            "F16" | "BF16" => 2,
            other => return Err(format!("{full} is {other}; only F32, F16 and BF16 weights are supported")),
        };
        if bytes.len() != count * width {
            return Err(format!("{full} has {} bytes for {count} {dtype} values", bytes.len()));
        }
        Ok(match dtype.as_str() {
            "F32" => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            "BF16" => bytes
                .chunks_exact(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                .collect(),
            _ => bytes.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect(),
        })
    }

    /// A layer norm's scale and shift (`weight`/`bias`, or `gamma`/`beta` in old checkpoints).
    fn norm(&self, name: &str, h: usize, eps: f32) -> Result<Norm, String> {
        let has = |n: &str| self.index.contains_key(&format!("{}{name}.{n}", self.prefix));
        let (w, b) = if has("weight") || !has("gamma") { ("weight", "bias") } else { ("gamma", "beta") };
        Ok(Norm { weight: self.get(&format!("{name}.{w}"), &[h])?, bias: self.get(&format!("{name}.{b}"), &[h])?, eps })
    }

    fn linear(&self, name: &str, n: usize, k: usize) -> Result<Linear, String> {
        let w = self.get(&format!("{name}.weight"), &[n, k])?;
        Ok(Linear::new(&w, self.get(&format!("{name}.bias"), &[n])?, n, k))
    }
}

/// The nearest half-precision value (ties to even), infinity beyond its range.
fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let mant = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if mant != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        // Subnormal: a count of 2^-24, from the mantissa with its implicit bit.
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let rounded = (m + (1 << (shift - 1)) - 1 + ((m >> shift) & 1)) >> shift;
        return sign | rounded as u16;
    }
    // A carry out of the mantissa moves into the exponent, as it should.
    let rounded = mant + 0x0fff + ((mant >> 13) & 1);
    let bits = ((e as u32) << 10) + (rounded >> 13);
    sign | bits.min(0x7c00) as u16
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = frac × 2^-24.
            let v = frac as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000,
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

impl Bert {
    /// The encoder of `config` with the weights of `path`; the error says what does not fit.
    pub fn load(path: &Path, config: &Config) -> Result<Bert, String> {
        let activation = Activation::named(&config.hidden_act)
            .ok_or_else(|| format!("hidden_act `{}` is not supported (gelu, gelu_new, relu are)", config.hidden_act))?;
        if config.position_embedding_type != "absolute" {
            return Err(format!("position_embedding_type `{}` is not supported", config.position_embedding_type));
        }
        let (h, heads) = (config.hidden_size, config.num_attention_heads);
        if heads == 0 || h % heads != 0 {
            return Err(format!("hidden_size {h} is not a multiple of num_attention_heads {heads}"));
        }
        let st = SafeTensors::read(path)?;
        let eps = config.layer_norm_eps as f32;
        let word = st.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?;
        let word: Vec<u16> = word.into_iter().map(f32_to_f16).collect();
        let position = st.get("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])?;
        let token_type = if config.type_vocab_size > 0 {
            let mut t = st.get("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?;
            t.truncate(h);
            t
        } else {
            vec![0.0; h]
        };
        let embedding_norm = st.norm("embeddings.LayerNorm", h, eps)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let at = |part: &str| format!("encoder.layer.{i}.{part}");
            let mut qkv_w = Vec::with_capacity(3 * h * h);
            let mut qkv_b = Vec::with_capacity(3 * h);
            for part in ["query", "key", "value"] {
                qkv_w.extend(st.get(&at(&format!("attention.self.{part}.weight")), &[h, h])?);
                qkv_b.extend(st.get(&at(&format!("attention.self.{part}.bias")), &[h])?);
            }
            layers.push(Layer {
                qkv: Linear::new(&qkv_w, qkv_b, 3 * h, h),
                attention_out: st.linear(&at("attention.output.dense"), h, h)?,
                attention_norm: st.norm(&at("attention.output.LayerNorm"), h, eps)?,
                intermediate: st.linear(&at("intermediate.dense"), config.intermediate_size, h)?,
                output: st.linear(&at("output.dense"), h, config.intermediate_size)?,
                output_norm: st.norm(&at("output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Bert { hidden: h, heads, activation, word, position, token_type, embedding_norm, layers })
    }

    /// The longest sequence the position embeddings cover.
    pub fn max_positions(&self) -> usize {
        self.position.len() / self.hidden
    }

    /// The pooled, L2-normalised vector of each sequence of token ids.
    pub fn encode(&self, sequences: &[&[u32]], pooling: Pooling) -> Result<Vec<Vec<f32>>, String> {
        let h = self.hidden;
        let vocab = self.word.len() / h;
        let total: usize = sequences.iter().map(|s| s.len()).sum();
        if let Some(s) = sequences.iter().find(|s| s.len() > self.max_positions()) {
            return Err(format!(
                "a sequence of {} tokens is longer than the model's {}",
                s.len(),
                self.max_positions()
            ));
        }
        let mut x = vec![0.0f32; total * h];
        let mut rows = x.chunks_exact_mut(h);
        for s in sequences {
            for (pos, &id) in s.iter().enumerate() {
                let id = id as usize;
                if id >= vocab {
                    return Err(format!("token id {id} is outside the model's vocabulary of {vocab}"));
                }
                let Some(row) = rows.next() else { break };
                let (w, p) = (&self.word[id * h..][..h], &self.position[pos * h..][..h]);
                for (((r, w), p), t) in row.iter_mut().zip(w).zip(p).zip(&self.token_type) {
                    *r = f16_to_f32(*w) + p + t;
                }
            }
        }
        self.embedding_norm.apply(&mut x);

        let mut qkv = vec![0.0f32; total * 3 * h];
        let mut context = vec![0.0f32; total * h];
        let mut projected = vec![0.0f32; total * h];
        let intermediate_size = self.layers.first().map_or(0, |l| l.intermediate.outputs());
        let mut intermediate = vec![0.0f32; total * intermediate_size];
        let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut scratch = AttentionScratch::new(longest, h / self.heads);
        for layer in &self.layers {
            layer.qkv.apply(&x, total, &mut qkv);
            let mut offset = 0;
            for s in sequences {
                wide::run(
                    #[inline(always)]
                    || self.attend(&qkv, offset, s.len(), &mut context, &mut scratch),
                );
                offset += s.len();
            }
            layer.attention_out.apply(&context, total, &mut projected);
            add_then_norm(&mut x, &projected, &layer.attention_norm);
            layer.intermediate.apply(&x, total, &mut intermediate);
            self.activation.apply(&mut intermediate);
            layer.output.apply(&intermediate, total, &mut projected);
            add_then_norm(&mut x, &projected, &layer.output_norm);
        }

        let mut out = Vec::with_capacity(sequences.len());
        let mut offset = 0;
        for s in sequences {
            let tokens = &x[offset * h..(offset + s.len()) * h];
            offset += s.len();
            let mut v = vec![0.0f32; h];
            match pooling {
                Pooling::Cls => {
                    if let Some(first) = tokens.chunks_exact(h).next() {
                        v.copy_from_slice(first);
                    }
                }
                Pooling::Mean => {
                    for row in tokens.chunks_exact(h) {
                        v.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                    }
                    let n = s.len().max(1) as f32;
                    v.iter_mut().for_each(|a| *a /= n);
                }
            }
            let norm = dot(&v, &v).sqrt().max(1e-12);
            v.iter_mut().for_each(|a| *a /= norm);
            out.push(v);
        }
        Ok(out)
    }

    /// Self-attention of one sequence (`len` tokens from `offset`), every head, into `context`.
    #[inline(always)]
    fn attend(&self, qkv: &[f32], offset: usize, len: usize, context: &mut [f32], s: &mut AttentionScratch) {
        let h = self.hidden;
        let dh = h / self.heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let row = |t: usize| &qkv[(offset + t) * 3 * h..][..3 * h];
        for head in 0..self.heads {
            let (q0, k0, v0) = (head * dh, h + head * dh, 2 * h + head * dh);
            // Keys transposed (a row per dimension), so each score loop runs over contiguous memory.
            for t in 0..len {
                for (d, &k) in row(t)[k0..k0 + dh].iter().enumerate() {
                    s.keys[d * len + t] = k;
                }
            }
            for i in 0..len {
                let scores = &mut s.scores[..len];
                scores.fill(0.0);
                for (d, &q) in row(i)[q0..q0 + dh].iter().enumerate() {
                    let q = q * scale;
                    for (sc, &k) in scores.iter_mut().zip(&s.keys[d * len..(d + 1) * len]) {
                        *sc += q * k;
                    }
                }
                let max = scores.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let mut sum = 0.0;
                for sc in scores.iter_mut() {
                    *sc = exp(*sc - max);
                    sum += *sc;
                }
                let out = &mut context[(offset + i) * h + q0..][..dh];
                out.fill(0.0);
                for (t, &p) in scores.iter().enumerate() {
                    let p = p / sum;
                    for (o, &v) in out.iter_mut().zip(&row(t)[v0..v0 + dh]) {
                        *o += p * v;
                    }
                }
            }
        }
    }
}

/// The encoder's element-wise loops (activations, softmax, attention) compiled for the widest
/// vectors the CPU has: baseline x86-64 code is 4 floats wide, AVX-512 16.
mod wide {
    /// Calls `body` from a function compiled with AVX-512 or AVX2 when the CPU has them. The
    /// closure and what it calls must be `#[inline(always)]`: code that is not inlined into
    /// the wide function is compiled for the baseline.
    #[inline(always)]
    pub fn run<R>(body: impl FnOnce() -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                return unsafe { avx512(body) };
            }
            if has!("avx2") && has!("fma") {
                // SAFETY: the CPU has AVX2 and FMA.
                return unsafe { avx2(body) };
            }
        }
        body()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512<R>(body: impl FnOnce() -> R) -> R {
        body()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2<R>(body: impl FnOnce() -> R) -> R {
        body()
    }
}

struct AttentionScratch {
    keys: Vec<f32>,
    scores: Vec<f32>,
}

impl AttentionScratch {
    fn new(longest: usize, head_dim: usize) -> AttentionScratch {
        AttentionScratch { keys: vec![0.0; longest * head_dim], scores: vec![0.0; longest] }
    }
}

/// `x = norm(x + y)`, the residual connection of each block.
fn add_then_norm(x: &mut [f32], y: &[f32], norm: &Norm) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
    norm.apply(x);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_erf_and_tanh_are_accurate() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let e = exp(x);
            assert!((e - x.exp()).abs() <= 3e-7 * x.exp() + f32::MIN_POSITIVE, "exp({x}) = {e} vs {}", x.exp());
            let want = libm_erf(f64::from(x));
            assert!((f64::from(erf(x)) - want).abs() < 3e-7, "erf({x}) = {} vs {want}", erf(x));
            assert!((tanh(x) - x.tanh()).abs() < 1e-6, "tanh({x})");
        }
        assert!(exp(-1000.0) < 1e-37, "underflows to (almost) zero");
        assert!(exp(1000.0).is_finite());
    }

    /// erf by its Taylor series in f64 (exact enough for |x| ≤ 3, and erf is ±1 to f32 beyond).
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 4.0 {
            return x.signum();
        }
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn half_precision_weights_convert_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert!(f16_to_f32(0x7c00).is_infinite() && f16_to_f32(0x7e00).is_nan());
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if !x.is_nan() {
                assert_eq!(f32_to_f16(x), h, "{h:#06x} = {x} round-trips");
            }
        }
        // Ties go to even; beyond the range is infinity; below half the smallest step is zero.
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f32_to_f16(1e6), 0x7c00);
        assert_eq!(f32_to_f16(-1e-9), 0x8000);
        assert!((f16_to_f32(f32_to_f16(0.1234)) - 0.1234).abs() < 1e-4);
    }
}

//! The Rust encoder against sentence-transformers: the vectors of all-MiniLM-L6-v2 for a fixed
//! list of sentences (short, typo'd, chatty, other languages, emoji, one beyond the window)
//! must be those the reference library gives (`tests/data/make_reference.py` made them).

use articlebot_embed::{Model, ModelOptions};

#[derive(serde::Deserialize)]
struct Reference {
    sentences: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let text = include_str!("data/all-minilm-l6-v2.reference.json");
    serde_json::from_str(text).expect("reference vectors")
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn model() -> Option<Model> {
    let dir = articlebot_testkit::require_test_model("the reference vectors")?;
    Some(Model::load(&dir, &ModelOptions { threads: 2 }).expect("the test model loads"))
}

#[test]
fn vectors_equal_sentence_transformers() {
    let Some(model) = model() else { return };
    let r = reference();
    assert_eq!(model.dim(), r.vectors[0].len());
    assert_eq!(model.window(), 256, "sentence_bert_config.json's max_seq_length, not tokenizer.json's 128");
    let mut done = 0;
    let all = model.embed_documents(&r.sentences, &mut |d| done = d).expect("embeds");
    assert_eq!((all.len(), done), (r.sentences.len(), r.sentences.len()));
    for ((s, want), got) in r.sentences.iter().zip(&r.vectors).zip(&all) {
        let c = cosine(want, got);
        assert!(c > 0.999, "cosine {c:.6} for {s:?}");
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "normalised: {norm}");
        let alone = model.embed_query(s).expect("embeds");
        assert!(cosine(want, &alone) > 0.999, "one at a time (padding must not matter): {s:?}");
    }
}

#[test]
fn long_texts_are_cut_into_overlapping_windows() {
    let Some(model) = model() else { return };
    let short = "Knees hurt after running on hard ground.";
    assert_eq!(model.windows(short, 0), vec![short.to_string()]);
    let long: String = (0..400).map(|i| format!("word{i} ")).collect();
    let pieces = model.windows(&long, 10);
    assert!(pieces.len() >= 3, "{}", pieces.len());
    for p in &pieces {
        assert!(long.contains(p.as_str()), "a window is a piece of the text");
        assert!(model.token_count(p) + 10 + 2 <= model.window(), "room is left for a prefix of 10 tokens");
    }
    assert!(pieces[0].starts_with("word0 ") && pieces.last().unwrap().ends_with("word399"), "{pieces:?}");
    // Consecutive windows overlap, so no sentence falls at a cut only.
    let first_end = pieces[0].split_whitespace().last().unwrap();
    assert!(pieces[1].contains(first_end), "windows overlap");
    let v = model.embed_documents(&pieces, &mut |_| {}).unwrap();
    assert_eq!(v.len(), pieces.len());
}

#[test]
fn long_texts_go_in_small_batches() {
    // Attention's memory grows with the batch times the square of its length: 32 texts of a full
    // window at once took the process to 800 MiB.
    let Some(model) = model() else { return };
    let long: String = (0..300).map(|i| format!("word{i} ")).collect();
    let full = model.windows(&long, 0).swap_remove(0);
    let texts = vec![full; 24];
    let mut steps = Vec::new();
    let mut last = 0;
    model
        .embed_documents(&texts, &mut |d| {
            steps.push(d - last);
            last = d;
        })
        .unwrap();
    assert_eq!(last, 24);
    assert!(steps.iter().all(|&n| n <= 8), "texts of 256 tokens per forward pass: {steps:?}");
    let short: Vec<String> = (0..40).map(|i| format!("short text {i}")).collect();
    let mut calls = 0;
    model.embed_documents(&short, &mut |_| calls += 1).unwrap();
    assert_eq!(calls, 2, "short texts still go 32 at a time");
}

#[test]
fn empty_and_odd_texts_get_vectors() {
    let Some(model) = model() else { return };
    let texts: Vec<String> = ["", " ", "\u{0}", "🏃", &"é".repeat(5000)].iter().map(|s| s.to_string()).collect();
    let v = model.embed_documents(&texts, &mut |_| {}).unwrap();
    assert!(v.iter().all(|v| v.len() == model.dim() && v.iter().all(|x| x.is_finite())));
    assert!(model.embed_query("").unwrap().iter().all(|x| x.is_finite()));
}

fn main() {
    let text = std::env::args().nth(1).unwrap();
    let n = articlebot::matching::normalize::Normalizer::new("english");
    let mut a = articlebot::matching::normalize::Analysis::default();
    n.analyze(&text, &mut a);
    for w in &a.words { println!("{:?} {:?}", a.surface(w), w); }
}

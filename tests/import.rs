//! `knowledge::import::import` and `articlebot import`: the seed page becomes 1 article with 5
//! sections and 17 stubs; re-importing is idempotent; a full page replaces its stub and keeps the
//! hand-added fields; Markdown pages; pages that cannot be imported are reported and skipped; the
//! shipped `knowledge/` is exactly what importing the seed page produces.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use articlebot_engine::{import, load_knowledge, Article, ImportReport, KnowledgeBase};
use tempfile::TempDir;

const SEED_TITLE: &str = "What causes knee pain when running?";
const SEED_ID: &str = "what-causes-knee-pain-when-running";
const PREV_ID: &str = "what-should-i-do-if-i-cant-play-basketball";
const NEXT_ID: &str = "what-sportswear-should-i-wear-for-running";

/// The 15 Recommend topics of the seed page, in page order.
const RELATED: [&str; 15] = [
    "what-is-the-correct-way-to-do-sit-ups",
    "how-to-increase-muscle-explosiveness",
    "metabolism-and-weight-loss",
    "what-shoes-are-suitable-for-defenders",
    "how-to-train-abdominal-muscles-in-daily-life",
    "6-self-torture-fitness-methods-are-surprisingly-effective",
    "does-walking-help-you-lose-weight-and-grow-muscle",
    "tips-for-keeping-your-calves-from-getting-thicker-when-running",
    "which-kind-of-aerobics-is-good-for-losing-weight",
    "which-part-of-the-body-is-most-likely-to-get-injured-when-playing-basketball",
    "does-general-abdominal-muscle-training-affect-height-growth",
    "how-to-exercise-the-quadriceps-without-hurting-the-knees",
    "fitness-exercises-for-beginners",
    "how-to-exercise-chest-and-abdominal-muscles",
    "can-you-use-skipping-rope-to-lose-weight-and-slim-your-calves",
];

fn seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-page.txt")
}

/// Every file under `dir`, relative path → bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf(), fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn article<'a>(kb: &'a KnowledgeBase, id: &str) -> &'a Article {
    let idx = kb.by_id(id).unwrap_or_else(|| panic!("no article `{id}`"));
    kb.article(idx).unwrap()
}

fn ids(kb: &KnowledgeBase, idxs: &[u32]) -> Vec<String> {
    idxs.iter().map(|&i| kb.article(i).unwrap().id.clone()).collect()
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_articlebot")).args(args).env_remove("ARTICLEBOT_KNOWLEDGE").output().unwrap()
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn import_seed(out: &Path) -> ImportReport {
    let r = import(&[seed()], out).expect("seed imports");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    r
}

#[test]
fn seed_page_becomes_one_article_with_five_sections_and_seventeen_stubs() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("kb");
    let r = import_seed(&out);
    assert_eq!(r, ImportReport { pages: 1, created: 18, updated: 0, unchanged: 0, stubs: 17, errors: vec![] });

    let files = snapshot(&out);
    let articles: Vec<&PathBuf> = files.keys().filter(|p| p.starts_with("articles")).collect();
    assert_eq!(articles.len(), 18, "{articles:?}");
    assert!(files.contains_key(Path::new("site.toml")) && files.contains_key(Path::new("synonyms.txt")));
    for id in RELATED.iter().chain([&SEED_ID, &PREV_ID, &NEXT_ID]) {
        assert!(files.contains_key(&Path::new("articles").join(format!("{id}.md"))), "{id}.md");
    }

    let loaded = load_knowledge(&out).expect("imported knowledge loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let kb = &loaded.kb;
    let st = kb.stats();
    assert_eq!((st.articles, st.stubs, st.sections), (1, 17, 5));

    let a = article(kb, SEED_ID);
    assert_eq!(a.title, SEED_TITLE);
    assert!(!a.is_stub());
    assert_eq!(a.sections.len(), 5);
    assert!(a.sections.iter().all(|s| s.heading.is_none()));
    assert!(a.sections[0].text.starts_with("Some friends may not do warm-up exercises"));
    assert!(a.sections[3].text.starts_with("Running posture."));
    assert!(a.sections[4].text.ends_with("neglect warm-up exercises."));
    assert_eq!(ids(kb, &a.related), RELATED);
    assert_eq!(a.prev.map(|p| kb.article(p).unwrap().id.as_str()), Some(PREV_ID));
    assert_eq!(a.next.map(|n| kb.article(n).unwrap().id.as_str()), Some(NEXT_ID));

    // Curly quotes survive: in the body and in a title known only from a `<<:` line.
    assert!(a.sections[3].text.contains("Don\u{2019}t imitate others deliberately."), "{}", a.sections[3].text);
    assert!(a.sections[4].text.contains("this article\u{2019}s introduction"));
    let prev = article(kb, PREV_ID);
    assert_eq!(prev.title, "What should I do if I can\u{2019}t play basketball?");
    // The non-breaking space after `<<:` is a separator, not part of the title.
    assert!(!prev.title.contains('\u{a0}'));
    assert!(prev.is_stub() && prev.teaser.is_none());
    let next = article(kb, NEXT_ID);
    assert_eq!(next.title, "What sportswear should I wear for running?");

    // Teasers of the Recommend topics are kept, ellipsis and all.
    let sit = article(kb, RELATED[0]);
    assert!(sit.is_stub());
    assert_eq!(sit.title, "What is the correct way to do sit-ups?");
    assert_eq!(sit.teaser.as_deref(), Some("Exercise is a lifestyle for many people nowadays,..."));
    let torture = article(kb, RELATED[5]);
    assert_eq!(torture.title, "6 \"self-torture\" fitness methods are surprisingly effective");
    assert_eq!(torture.teaser.as_deref(), Some("1. Inverted fitness method Headstand has always b..."));
    for id in RELATED {
        let stub = article(kb, id);
        assert!(
            stub.is_stub() && stub.teaser.as_deref().is_some_and(|t| t.ends_with("...")),
            "{id}: {:?}",
            stub.teaser
        );
    }

    // The stub file is what the issue describes: title, teaser, no body.
    let stub_text = s(&files[&Path::new("articles").join("metabolism-and-weight-loss.md")]);
    assert_eq!(
        stub_text,
        "+++\nid = \"metabolism-and-weight-loss\"\ntitle = \"Metabolism and Weight Loss\"\nstub = true\nteaser = \"Metabolism is related to a person's physical ...\"\n+++\n"
    );
    let prev_text = s(&files[&Path::new("articles").join(format!("{PREV_ID}.md"))]);
    assert!(prev_text.contains("title = \"What should I do if I can\u{2019}t play basketball?\""), "{prev_text}");
}

#[test]
fn reimport_is_idempotent() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("kb");
    import_seed(&out);
    let before = snapshot(&out);
    let r = import_seed(&out);
    assert_eq!(r, ImportReport { pages: 1, created: 0, updated: 0, unchanged: 18, stubs: 17, errors: vec![] });
    assert_eq!(snapshot(&out), before, "re-import changed files");

    // Through the binary: the report says so, and still nothing changes.
    let o = run(&["import".as_ref(), seed().as_os_str(), "--out".as_ref(), out.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    let stdout = s(&o.stdout);
    assert!(
        stdout.contains("imported 1 page into") && stdout.contains("0 created, 0 updated, 18 unchanged (17 stubs)"),
        "{stdout}"
    );
    assert_eq!(snapshot(&out), before);
}

#[test]
fn shipped_knowledge_is_the_import_of_the_seed_page() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("kb");
    import_seed(&out);
    let want: BTreeMap<_, _> = snapshot(&out).into_iter().filter(|(p, _)| p.starts_with("articles")).collect();
    let shipped_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
    let shipped: BTreeMap<_, _> =
        snapshot(&shipped_dir).into_iter().filter(|(p, _)| p.starts_with("articles")).collect();
    assert_eq!(shipped.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "shipped article files differ");
    for (p, bytes) in &want {
        assert!(
            shipped[p] == *bytes,
            "knowledge/{} differs from the import of the seed page:\n{}",
            p.display(),
            s(&shipped[p])
        );
    }
    // And it is a valid knowledge dir with the numbers the issue promises.
    let loaded = load_knowledge(&shipped_dir).expect("shipped knowledge loads");
    let st = loaded.kb.stats();
    assert_eq!((st.articles, st.stubs, st.sections), (1, 17, 5));
    let o = run(&["check".as_ref(), shipped_dir.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", s(&o.stdout), s(&o.stderr));
}

#[test]
fn a_full_page_replaces_its_stub_and_keeps_hand_added_fields() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("kb");
    import_seed(&out);
    let stub_path = out.join("articles/metabolism-and-weight-loss.md");

    // The owner adds questions and keywords to the stub by hand.
    let stub = fs::read_to_string(&stub_path).unwrap();
    let edited = stub.replacen(
        "stub = true\n",
        "stub = true\nquestions = [\"Does a slow metabolism make me fat?\"]\nkeywords = [\"bmr\", \"calories\"]\n",
        1,
    );
    assert_ne!(edited, stub);
    fs::write(&stub_path, &edited).unwrap();

    // Its full page arrives later. The title differs in case and spacing only.
    let page = tmp.path().join("metabolism.txt");
    fs::write(
        &page,
        "Metabolism  and weight loss\n\nMetabolism and weight loss\n\n\
         Metabolism is the sum of the body\u{2019}s chemical reactions.\n\n\
         A higher\u{a0}muscle mass burns more energy at rest — \u{201c}afterburn\u{201d} is small.\n\n\
         >>:\u{a0}What causes knee pain when running?\n",
    )
    .unwrap();
    let r = import(std::slice::from_ref(&page), &out).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.pages, r.created, r.updated, r.unchanged, r.stubs), (1, 0, 1, 17, 16));

    let files = snapshot(&out);
    assert_eq!(files.keys().filter(|p| p.starts_with("articles")).count(), 18, "replaced in place, no new file");
    let text = fs::read_to_string(&stub_path).unwrap();
    assert!(text.contains("id = \"metabolism-and-weight-loss\""), "the id stays: {text}");
    assert!(!text.contains("stub = true"), "{text}");
    // NBSP and curly quotes in the text are preserved byte for byte.
    assert!(text.contains("body\u{2019}s chemical"));
    assert!(
        text.contains("higher\u{a0}muscle mass burns more energy at rest — \u{201c}afterburn\u{201d} is small."),
        "{text}"
    );

    let loaded = load_knowledge(&out).unwrap();
    let kb = &loaded.kb;
    assert_eq!(kb.stats().articles, 2);
    assert_eq!(kb.stats().stubs, 16);
    let m = article(kb, "metabolism-and-weight-loss");
    assert!(!m.is_stub());
    assert_eq!(m.sections.len(), 2);
    assert_eq!(m.keywords, vec!["bmr", "calories"]);
    assert_eq!(m.next.and_then(|n| kb.article(n)).map(|a| a.id.as_str()), Some(SEED_ID));
    assert_eq!(
        m.sections[1].text,
        "A higher\u{a0}muscle mass burns more energy at rest — \u{201c}afterburn\u{201d} is small."
    );
    assert_eq!(m.questions, vec!["Does a slow metabolism make me fat?"]);
    // The seed article still links to it as related.
    assert_eq!(ids(kb, &article(kb, SEED_ID).related), RELATED);

    // Re-importing everything (the seed page again too) changes nothing and makes no stub again.
    let before = snapshot(&out);
    let r = import(&[seed(), page.clone()], &out).unwrap();
    assert_eq!((r.pages, r.created, r.updated, r.unchanged), (2, 0, 0, 18), "{r:?}");
    assert_eq!(snapshot(&out), before);
    let r = import(&[seed()], &out).unwrap();
    assert_eq!((r.created, r.updated, r.unchanged), (0, 0, 18), "{r:?}");
    assert_eq!(snapshot(&out), before, "the seed page's link must not turn the article back into a stub");
}

#[test]
fn import_order_does_not_matter() {
    let tmp = TempDir::new().unwrap();
    let page = tmp.path().join("pages/shoes.txt");
    fs::create_dir_all(page.parent().unwrap()).unwrap();
    fs::write(
        &page,
        "What shoes are suitable for defenders?\n\nDefenders cut and stop often: pick high-tops with grip.\n\n\
         <<: What causes knee pain when running?\n\nRecommend\n\nFitness exercises for beginners\n\nThe effects of aerobics have long been known to m...\n",
    )
    .unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    import(&[seed(), page.clone()], &a).unwrap();
    import(std::slice::from_ref(&page), &b).unwrap();
    import(&[seed()], &b).unwrap();
    assert_eq!(snapshot(&a), snapshot(&b));
    let kb = load_knowledge(&a).unwrap().kb;
    assert_eq!(kb.stats().articles, 2);
    let shoes = article(&kb, "what-shoes-are-suitable-for-defenders");
    assert_eq!(shoes.prev.map(|p| kb.article(p).unwrap().id.as_str()), Some(SEED_ID));
    assert_eq!(ids(&kb, &shoes.related), vec!["fitness-exercises-for-beginners"]);
}

#[test]
fn markdown_pages_are_imported() {
    let tmp = TempDir::new().unwrap();
    let page = tmp.path().join("tea.md");
    fs::write(
        &page,
        "# How to brew green tea\n\n\
         Green tea turns bitter when the water is too hot.\n\n\
         ## Water\n\nUse water at 80\u{a0}°C, not boiling.\n\nSoft water is best.\n\n\
         ## Time ##\n\nTwo to three **minutes**; see [the chart](https://example.com/chart).\n\n\
         <<: [Coffee basics](https://example.com/coffee)\n\
         >>: Чай улун\n\n\
         ## Related\n\n\
         - [Why is my tea bitter?](https://example.com/bitter) — tannins and temperature\n\
         - Matcha 抹茶 — a powdered tea\n",
    )
    .unwrap();
    let out = tmp.path().join("kb");
    let r = import(std::slice::from_ref(&page), &out).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.pages, r.created, r.stubs), (1, 5, 4));

    let kb = load_knowledge(&out).unwrap().kb;
    let tea = article(&kb, "how-to-brew-green-tea");
    let sections: Vec<(Option<&str>, &str)> =
        tea.sections.iter().map(|s| (s.heading.as_deref(), s.text.as_str())).collect();
    assert_eq!(
        sections,
        vec![
            (None, "Green tea turns bitter when the water is too hot."),
            (Some("Water"), "Use water at 80\u{a0}°C, not boiling.\n\nSoft water is best."),
            (Some("Time"), "Two to three minutes; see the chart."),
        ]
    );
    assert_eq!(tea.prev.map(|p| kb.article(p).unwrap().id.as_str()), Some("coffee-basics"));
    let next = article(&kb, &kb.article(tea.next.unwrap()).unwrap().id);
    assert_eq!(next.title, "Чай улун");
    assert_eq!(next.id, "chai-ulun");
    assert_eq!(ids(&kb, &tea.related), vec!["why-is-my-tea-bitter", "matcha-mo-cha"]);
    let bitter = article(&kb, "why-is-my-tea-bitter");
    assert!(bitter.is_stub());
    assert_eq!(bitter.url.as_deref(), Some("https://example.com/bitter"));
    assert_eq!(bitter.teaser.as_deref(), Some("tannins and temperature"));
    let matcha = article(&kb, "matcha-mo-cha");
    assert_eq!(matcha.title, "Matcha 抹茶");
    assert_eq!(matcha.teaser.as_deref(), Some("a powdered tea"));

    let before = snapshot(&out);
    let r = import(&[page], &out).unwrap();
    assert_eq!(r.unchanged, 5);
    assert_eq!(snapshot(&out), before);
}

/// Site-relative links ("/green") are common in Markdown exports; they have no site to resolve
/// against, so the stub keeps its title and teaser and drops the link instead of failing `check`.
#[test]
fn relative_links_are_dropped_and_the_import_still_checks() {
    let tmp = TempDir::new().unwrap();
    let page = tmp.path().join("tea.md");
    fs::write(
        &page,
        "# Tea\n\nSteep it briefly.\n\n<<: [Coffee](../coffee)\n\n## Related\n\n- [Green tea](/green) — grassy\n- [Oolong](https://example.com/oolong)\n",
    )
    .unwrap();
    let out = tmp.path().join("kb");
    let r = import(std::slice::from_ref(&page), &out).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let kb = load_knowledge(&out).unwrap().kb;
    let green = article(&kb, "green-tea");
    assert_eq!((green.url.as_deref(), green.teaser.as_deref()), (None, Some("grassy")));
    assert_eq!(article(&kb, "coffee").url, None);
    assert_eq!(article(&kb, "oolong").url.as_deref(), Some("https://example.com/oolong"));
    let check = run(&["check".as_ref(), "--knowledge".as_ref(), out.as_os_str()]);
    assert!(check.status.success(), "{}", s(&check.stderr));
}

#[test]
fn pages_that_cannot_be_imported_are_reported_and_the_rest_still_import() {
    let tmp = TempDir::new().unwrap();
    let pages = tmp.path().join("pages");
    fs::create_dir_all(&pages).unwrap();
    fs::write(pages.join("a-good.txt"), "Good page\n\nGood text.\n").unwrap();
    fs::write(pages.join("b-no-title.md"), "Text without a `# Title` heading.\n\n## Section\n\nMore.\n").unwrap();
    fs::write(pages.join("c-blank.txt"), "\n \n\t\n").unwrap();
    fs::write(pages.join("d-bad-utf8.txt"), b"Title\n\nBad \xc0 byte\n").unwrap();
    fs::write(pages.join("e-only-title.txt"), "Only a title\n").unwrap();
    fs::write(pages.join("f-knowledge.md"), "+++\nid = \"x\"\ntitle = \"X\"\n+++\n\nx\n").unwrap();
    fs::write(pages.join("g-good.md"), "# Second good page\n\nText.\n").unwrap();
    fs::write(pages.join("notes.pdf"), "%PDF").unwrap();
    let out = tmp.path().join("kb");

    let r = import(std::slice::from_ref(&pages), &out).unwrap();
    assert_eq!(r.pages, 2);
    assert_eq!(r.created, 2);
    let errs: Vec<(String, Option<usize>)> =
        r.errors.iter().map(|d| (d.path.file_name().unwrap().to_string_lossy().into_owned(), d.line)).collect();
    assert_eq!(
        errs,
        vec![
            ("b-no-title.md".into(), Some(1)),
            ("c-blank.txt".into(), Some(1)),
            ("d-bad-utf8.txt".into(), Some(3)),
            ("e-only-title.txt".into(), Some(1)),
            ("f-knowledge.md".into(), Some(1)),
        ],
        "{:?}",
        r.errors
    );
    assert!(r.errors[0].message.contains("no title") && r.errors[0].message.contains("# Title"));
    assert!(r.errors[3].message.contains("no text"));
    assert!(r.errors[4].message.contains("already a knowledge file"));
    // What was imported passes check.
    let kb = load_knowledge(&out).unwrap().kb;
    assert!(kb.by_id("good-page").is_some() && kb.by_id("second-good-page").is_some());

    // The binary exits 1 and prints FILE:LINE for each, after importing the rest.
    let out2 = tmp.path().join("kb2");
    let o = run(&["import".as_ref(), pages.as_os_str(), "--out".as_ref(), out2.as_os_str()]);
    let stdout = s(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}{}", s(&o.stderr));
    assert!(
        stdout.contains(&format!("error: {}:1: page has no title", pages.join("b-no-title.md").display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("error: {}:3: invalid UTF-8", pages.join("d-bad-utf8.txt").display())),
        "{stdout}"
    );
    assert!(stdout.contains("imported 2 pages"), "{stdout}");
    let stderr = s(&o.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: 5 pages could not be imported"), "{stderr}");
    assert!(out2.join("articles/good-page.md").exists());

    // A non-page file named on the command line is an error too.
    let r = import(&[pages.join("notes.pdf")], &out).unwrap();
    assert_eq!(r.errors.len(), 1);
    assert!(r.errors[0].message.contains("not a page"));
}

#[test]
fn import_refuses_to_write_into_a_knowledge_dir_that_does_not_parse() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("kb");
    import_seed(&out);
    fs::write(out.join("articles/broken.md"), "+++\nid = \"broken\"\ntitle = broken\n+++\n").unwrap();
    let before = snapshot(&out);
    let page = tmp.path().join("new.txt");
    fs::write(&page, "New page\n\nNew text.\n").unwrap();
    let errs = import(std::slice::from_ref(&page), &out).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, out.join("articles/broken.md"));
    assert_eq!(errs[0].line, Some(3));
    assert_eq!(snapshot(&out), before, "nothing written");

    let o = run(&["import".as_ref(), page.as_os_str(), "--out".as_ref(), out.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(s(&o.stderr).contains("nothing was written"), "{}", s(&o.stderr));
    assert_eq!(snapshot(&out), before);
}

#[test]
fn titles_whose_slugs_collide_get_distinct_stable_ids() {
    let tmp = TempDir::new().unwrap();
    let p1 = tmp.path().join("c1.md");
    let p2 = tmp.path().join("c2.md");
    fs::write(&p1, "# C++\n\nA language.\n\n## Related\n\n- C#\n- 🏃\n").unwrap();
    fs::write(&p2, "# C#\n\nAnother language.\n").unwrap();
    let out = tmp.path().join("kb");
    let r = import(&[p1.clone(), p2.clone()], &out).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let kb = load_knowledge(&out).unwrap().kb;
    assert_eq!(kb.articles.len(), 3);
    let cpp = article(&kb, "c");
    assert_eq!(cpp.title, "C++");
    let related = ids(&kb, &cpp.related);
    assert_eq!(related.len(), 2);
    assert!(related[0].starts_with("c-"), "{related:?}");
    let csharp = article(&kb, &related[0]);
    assert_eq!(csharp.title, "C#");
    assert!(!csharp.is_stub(), "the full page of C# replaced its stub");
    // Same ids when imported again into a fresh dir.
    let out2 = tmp.path().join("kb2");
    import(&[p1, p2], &out2).unwrap();
    assert_eq!(snapshot(&out), snapshot(&out2));
}

#[test]
fn titles_cannot_write_outside_the_knowledge_dir() {
    let tmp = TempDir::new().unwrap();
    let pages = tmp.path().join("pages");
    fs::create_dir(&pages).unwrap();
    let hostile = [
        "../../etc/passwd",
        "..\\..\\windows\\system32",
        "/absolute/path",
        "~/.ssh/authorized_keys",
        "....//....//x",
        "\u{0}nul",
    ];
    for (i, t) in hostile.iter().enumerate() {
        let recommend = if i == 0 { format!("\n\nRecommend\n\n{}\n\nteaser...\n", hostile[1]) } else { String::new() };
        fs::write(pages.join(format!("p{i}.txt")), format!("{t}\n\nBody of {i}.{recommend}\n")).unwrap();
    }
    let out = tmp.path().join("kb");
    let report = import(&[pages], &out).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let before: Vec<PathBuf> = walk(tmp.path());
    for p in &before {
        let inside = p.starts_with(&out) || p.starts_with(tmp.path().join("pages"));
        assert!(inside, "{} was written outside the knowledge dir", p.display());
    }
    for f in fs::read_dir(out.join("articles")).unwrap() {
        let name = f.unwrap().file_name().into_string().unwrap();
        let id = name.strip_suffix(".md").unwrap();
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{id}"
        );
    }
    let kb = load_knowledge(&out).unwrap().kb;
    assert!(kb.articles.iter().any(|a| a.title == "../../etc/passwd"), "the title itself is kept as text");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

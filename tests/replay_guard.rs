//! Questions added by review are regression cases: `/reload` refuses a knowledge base that no
//! longer answers them (unless forced) and says which; `check --replay` asks them of a dir.

use std::process::Command;

use crate::bot_harness::{bot_bin, World, ADMIN, WAIT};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_loses_a_reviewed_question_is_refused_unless_forced() {
    let mut w = World::with_args(&["--no-rate-limit"]).await;
    let data = w.opts.data.display().to_string();
    // Two users pick the same did-you-mean choice; the owner adds the question by review.
    let mut picked = String::new();
    for user in [3001, 3002] {
        let r = w.fake.send_text_and_wait(user, user, "calves", WAIT).await.unwrap();
        let choice = r.buttons()[1].clone();
        picked = choice.text.trim_end_matches('…').to_string();
        w.fake.press_button(user, user, r.message_id, choice.callback_data.as_deref().unwrap());
        w.fake.nth_reply(user, 1, WAIT).await.unwrap();
    }
    w.bot.take().unwrap().terminate();
    let out = w.command(&["review", "--data", &data], "a\n");
    assert!(text(&out.stdout).contains("Added \"calves\""), "{}{}", text(&out.stdout), text(&out.stderr));
    let out = w.command(&["export-learned", "--data", &data], "");
    let export = w.opts.data.parent().unwrap().join("learned.jsonl");
    std::fs::write(&export, &out.stdout).unwrap();
    let file = std::fs::read_dir(w.opts.knowledge.join("articles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).unwrap().contains("questions = [\"calves\"]"))
        .expect("the question is in one article file");

    // check --replay, from the data dir and from the export: all answered as reviewed.
    for from in [data.as_str(), export.to_str().unwrap()] {
        let out = w.command(&["check", "--replay", from], "");
        let shown = text(&out.stdout);
        assert!(out.status.success(), "{shown}{}", text(&out.stderr));
        assert!(shown.contains("replay: 1 reviewed question: all answered as reviewed"), "{shown}");
    }

    w.start().await;
    let r = w.fake.send_text_and_wait(3003, 3003, "calves", WAIT).await.unwrap();
    assert!(r.plain.starts_with(&picked), "{}", r.plain);

    // An edit takes the question out again: the reload is refused and says which question.
    let edited = std::fs::read_to_string(&file).unwrap().replace("questions = [\"calves\"]\n", "");
    std::fs::write(&file, edited).unwrap();
    let r = w.fake.send_text_and_wait(ADMIN, ADMIN, "/reload", WAIT).await.unwrap();
    assert!(r.plain.starts_with("Reload refused"), "{}", r.plain);
    assert!(r.plain.contains("\"calves\" →") && r.plain.contains("/reload force"), "{}", r.plain);
    let r = w.fake.send_text_and_wait(3004, 3004, "calves", WAIT).await.unwrap();
    assert!(r.plain.starts_with(&picked), "the previous knowledge base still answers: {}", r.plain);

    // check --replay says the same of the edited dir, and fails; with the bot running it reads
    // the reviewed questions through the bot's admin socket.
    for from in [export.to_str().unwrap(), data.as_str()] {
        let out = w.command(&["check", "--replay", from], "");
        let shown = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{shown}");
        assert!(
            shown.contains("differs: \"calves\" →") && shown.contains("1 not answered as reviewed (100.0 %)"),
            "{shown}"
        );
        assert!(text(&out.stderr).contains("does not answer 1 of the reviewed questions"), "{}", text(&out.stderr));
    }

    // Forced, it is swapped in and the report still lists what changed.
    let r = w.fake.send_text_and_wait(ADMIN, ADMIN, "/reload force", WAIT).await.unwrap();
    assert!(r.plain.starts_with("Knowledge reloaded"), "{}", r.plain);
    assert!(r.plain.contains("1 not answered as reviewed, 1 of them broken by this change"), "{}", r.plain);
    let r = w.fake.send_text_and_wait(3005, 3005, "calves", WAIT).await.unwrap();
    assert!(!r.plain.starts_with(&picked), "the forced knowledge base serves: {}", r.plain);
    let r = w.fake.send_text_and_wait(ADMIN, ADMIN, "/reload soon", WAIT).await.unwrap();
    assert!(r.plain.contains("/reload force to swap in"), "{}", r.plain);
}

#[test]
fn check_replay_refuses_what_is_not_an_export() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("learned.jsonl");
    std::fs::write(&bad, "{\"question\": \"x\", \"article\": \"y\"}\nnot json\n").unwrap();
    let out = Command::new(bot_bin())
        .args(["check", "--replay"])
        .arg(&bad)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge"))
        .env_remove("ARTICLEBOT_MODEL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("learned.jsonl:2: not a line of export-learned"), "{err}");
}

//! The learning loop end to end: users of the real `articlebot serve` (against the fake Bot API)
//! pick a did-you-mean choice or tap "None of these"; the owner reviews in the console with the
//! bot stopped (`tests/owner.rs` reviews with it running); the next user asking gets the article.

use crate::bot_harness::{World, ADMIN, WAIT};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn picks_reviewed_in_the_console_answer_the_next_user() {
    let mut w = World::with_args(&["--no-rate-limit"]).await;
    let mut picked_title = String::new();
    for user in [2001, 2002] {
        let r = w.fake.send_text_and_wait(user, user, "calves", WAIT).await.unwrap();
        assert!(r.plain.starts_with("I'm not sure I understood"), "{}", r.plain);
        let buttons = r.buttons();
        assert_eq!(buttons.last().map(|b| b.text.as_str()), Some("None of these"), "{buttons:?}");
        let choice = &buttons[1];
        picked_title = choice.text.trim_end_matches('…').to_string();
        w.fake.press_button(user, user, r.message_id, choice.callback_data.as_deref().unwrap());
        let answer = w.fake.nth_reply(user, 1, WAIT).await.unwrap();
        assert!(answer.plain.starts_with(&picked_title), "{}", answer.plain);
    }
    // A third user finds nothing that fits: the question is noted as unanswered.
    let r = w.fake.send_text_and_wait(2003, 2003, "calves", WAIT).await.unwrap();
    w.fake.press_button_labeled(2003, 2003, r.message_id, "None of these").expect("the button");
    let noted = w.fake.nth_reply(2003, 1, WAIT).await.unwrap();
    assert!(noted.plain.starts_with("Sorry, I don't have an article about that"), "{}", noted.plain);
    let list = w.fake.send_text_and_wait(ADMIN, ADMIN, "/unanswered", WAIT).await.unwrap();
    assert!(list.plain.contains("calves"), "{}", list.plain);

    let logs = w.bot().logs();
    // Article ids may name calves; the question itself must not appear.
    let without_ids = |l: &str| {
        let mut parts = l.split("article=\"");
        let first = parts.next().unwrap_or("").to_string();
        first + &parts.map(|p| p.split_once('"').map_or("", |(_, rest)| rest)).collect::<String>()
    };
    let leaked: Vec<&str> = logs.lines().filter(|l| without_ids(l).contains("calves")).collect();
    assert!(leaked.is_empty(), "no user text in the bot's info logs: {leaked:?}");

    let bot = w.bot.take().unwrap();
    assert!(bot.terminate().success());
    let out = w.owner_command(&["review"], "a\n");
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}\n{}", text(&out.stderr));
    assert!(shown.contains("Question: \"calves\""), "{shown}");
    assert!(shown.contains("Evidence: 2 user(s): 2 pick(s), 0 👍, 0 👎, 0 rephrase(s)"), "{shown}");
    assert!(shown.contains("Added \"calves\" to ") && shown.contains("now: yes."), "{shown}");
    let file = std::fs::read_dir(w.opts.knowledge.join("articles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).unwrap().contains("questions = [\"calves\"]"))
        .expect("the question is in one article file");

    let out = w.owner_command(&["export-learned"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["question"], "calves");
    let id = lines[0]["article"].as_str().unwrap().to_string();
    assert!(std::fs::read_to_string(&file).unwrap().contains(&format!("id = \"{id}\"")));

    // The bot started again answers the question outright.
    w.start().await;
    let r = w.fake.send_text_and_wait(2004, 2004, "calves", WAIT).await.unwrap();
    assert!(r.plain.starts_with(&picked_title), "answered now: {}", r.plain);

    // Undo in the console takes it back out.
    w.bot.take().unwrap().terminate();
    let out = w.owner_command(&["review"], "u\nq\n");
    assert!(text(&out.stdout).contains("Undone: \"calves\""), "{}", text(&out.stdout));
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge/articles").join(file.file_name().unwrap());
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(shipped).unwrap(), "byte for byte as shipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_none_of_these_buttons_change_nothing() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let r = w.fake.send_text_and_wait(2101, 2101, "calves", WAIT).await.unwrap();
    for forged in ["1:z:calves", "2:z", "1:z:"] {
        let mark = w.fake.mark();
        w.fake.press_button(2101, 2101, r.message_id, forged);
        let answered = w.fake.wait_for_after(mark, |c| c.method == "answerCallbackQuery", WAIT).await;
        assert!(answered.is_some(), "{forged}: the tap is answered");
    }
    // The real button still works afterwards: the choices are still the ones on screen.
    w.fake.press_button_labeled(2101, 2101, r.message_id, "None of these").expect("the button");
    let noted = w.fake.nth_reply(2101, 1, WAIT).await.unwrap();
    assert!(noted.plain.starts_with("Sorry, I don't have an article about that"), "{}", noted.plain);
    // Tapped again (nothing on screen to refuse any more): no second note.
    w.fake.press_button_labeled(2101, 2101, r.message_id, "None of these").expect("the button");
    let again = w.fake.nth_reply(2101, 2, WAIT).await.unwrap();
    assert!(!again.plain.starts_with("Sorry, I don't have"), "{}", again.plain);
    let list = w.fake.send_text_and_wait(ADMIN, ADMIN, "/unanswered", WAIT).await.unwrap();
    assert!(list.plain.contains("calves") && list.plain.contains("asked 1×"), "{}", list.plain);
}

/// `[learning] auto_accept_users = 2`: the second user's pick adds the question by itself,
/// after the reply and without the owner; it is logged without the question, shown as automatic
/// by `export-learned` and `review`, and undone there.
#[tokio::test(flavor = "multi_thread")]
async fn two_users_picks_add_the_question_by_themselves_and_review_undoes_it() {
    let mut w = World::unstarted(&["--no-rate-limit"]).await;
    let site = w.opts.knowledge.join("site.toml");
    let config = std::fs::read_to_string(&site).unwrap();
    std::fs::write(&site, format!("{config}\n[learning]\nauto_accept_users = 2\n")).unwrap();
    w.start().await;
    let files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(w.opts.knowledge.join("articles")).unwrap().map(|e| e.unwrap().path()).collect()
    };
    let added = || files().into_iter().find(|p| std::fs::read_to_string(p).unwrap().contains("\"calves\""));
    let mut picked_title = String::new();
    for user in [2201, 2202] {
        assert!(added().is_none(), "nothing added before the second user");
        let r = w.fake.send_text_and_wait(user, user, "calves", WAIT).await.unwrap();
        assert!(r.plain.starts_with("I'm not sure I understood"), "{}", r.plain);
        let choice = &r.buttons()[1];
        picked_title = choice.text.trim_end_matches('…').to_string();
        w.fake.press_button(user, user, r.message_id, choice.callback_data.as_deref().unwrap());
        let answer = w.fake.nth_reply(user, 1, WAIT).await.unwrap();
        assert!(answer.plain.starts_with(&picked_title), "{}", answer.plain);
    }
    // Off the request path: the file is written and reloaded shortly after the reply.
    let started = std::time::Instant::now();
    let file = loop {
        if let Some(f) = added() {
            break f;
        }
        assert!(started.elapsed() < WAIT, "the question was not added by itself");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut answered = String::new();
    while started.elapsed() < WAIT {
        answered = w.fake.send_text_and_wait(2203, 2203, "calves", WAIT).await.unwrap().plain;
        if answered.starts_with(&picked_title) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(answered.starts_with(&picked_title), "the next user is answered outright: {answered}");
    let logs = w.bot().logs();
    let line = logs.lines().find(|l| l.contains("question added automatically")).expect("logged at info");
    assert!(line.contains("users=2") && line.contains("picks=2") && line.contains("article="), "{line}");
    let without_ids = |l: &str| {
        let mut parts = l.split("article=\"");
        let first = parts.next().unwrap_or("").to_string();
        first + &parts.map(|p| p.split_once('"').map_or("", |(_, rest)| rest)).collect::<String>()
    };
    let leaked: Vec<&str> = logs.lines().filter(|l| without_ids(l).contains("calves")).collect();
    assert!(leaked.is_empty(), "no user text in the bot's info logs: {leaked:?}");

    assert!(w.bot.take().unwrap().terminate().success());
    let out = w.owner_command(&["export-learned"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!((&lines[0]["question"], &lines[0]["automatic"]), (&"calves".into(), &true.into()));
    let out = w.owner_command(&["review"], "u\nq\n");
    let shown = text(&out.stdout);
    assert!(shown.contains("Added automatically (1)"), "{shown}");
    assert!(shown.contains("Undone: \"calves\"") && shown.contains("(added automatically)"), "{shown}");
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge/articles").join(file.file_name().unwrap());
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(shipped).unwrap(), "byte for byte as shipped");
}

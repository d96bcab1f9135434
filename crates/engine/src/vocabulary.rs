//! The words that steer a conversation, in one table: the commands (`/more`), the words that say
//! the same when typed as a whole message ("more", "next", "back"), and bare numbers picking a
//! choice. Telegram's command menus, the help texts and the console are made from [`COMMANDS`],
//! so a command is added, renamed or described in one place.

/// What the user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Question(String),
    /// `/start`, with the deep-link parameter if any.
    Start(Option<String>),
    Help,
    Topics(usize),
    /// The next section of the article the user is reading.
    More,
    /// The previous article.
    Back,
    /// The n-th (1-based) choice of the last reply.
    Pick(usize),
    /// Open an article (by short key) at a section (`None`: the start).
    Open {
        key: String,
        section: Option<usize>,
    },
    Feedback {
        key: String,
        section: Option<usize>,
        up: bool,
    },
    /// "up"/"down" typed: rates the answer on screen, if there is one.
    Rate {
        up: bool,
    },
    /// "None of these" under did-you-mean choices: the question has no answer among them.
    NoneOfThese,
    Reset,
    Forget,
    /// A sticker, photo, voice message...
    NotText,
    /// Show the current position again (a redelivered step).
    Current,
}

/// Who may use a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    /// Admins only (numeric user ids the front end knows); listed only in their menus.
    Admins,
}

/// Commands that act on the process rather than on one user's conversation: front ends carry
/// them out themselves, after checking the sender is an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// `/reload`; `/reload force` swaps in a knowledge base that breaks reviewed questions.
    Reload {
        force: bool,
    },
    /// An admin command with an argument it does not take: how to write it.
    Usage(&'static str),
    /// `/why QUESTION`: how the matcher reads the question and which rule decides.
    Why(String),
    Stats,
    Unanswered,
    /// The learning loop's proposals, one card at a time; `undo: true` takes the last decision
    /// back (`/review undo`).
    Review {
        undo: bool,
    },
}

/// What a command asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Conversation(Input),
    Admin(AdminCommand),
}

/// One command of the bot.
#[derive(Debug)]
pub struct CommandSpec {
    /// Written `/name`.
    pub name: &'static str,
    /// Whole messages that mean the same ("next"), in any letter case.
    pub words: &'static [&'static str],
    /// What it does, for menus and help.
    pub summary: &'static str,
    pub audience: Audience,
    /// Shown in command menus and help; the others still work when typed.
    pub listed: bool,
    /// The command with its argument (the text after the name, trimmed).
    make: fn(&str) -> Command,
}

impl CommandSpec {
    /// What `/name arg` asks for.
    pub fn with_argument(&self, arg: &str) -> Command {
        (self.make)(arg.trim())
    }
}

const fn spec(
    name: &'static str,
    words: &'static [&'static str],
    summary: &'static str,
    audience: Audience,
    make: fn(&str) -> Command,
) -> CommandSpec {
    CommandSpec { name, words, summary, audience, listed: true, make }
}

fn conversation(input: Input) -> Command {
    Command::Conversation(input)
}

/// Every command, in menu order.
pub const COMMANDS: &[CommandSpec] = &[
    spec("start", &[], "Welcome and popular topics", Audience::Everyone, |arg| {
        conversation(Input::Start((!arg.is_empty()).then(|| arg.to_string())))
    }),
    spec("help", &[], "How to use the bot", Audience::Everyone, |_| conversation(Input::Help)),
    // `/topics 3` opens the third page.
    spec("topics", &[], "All topics", Audience::Everyone, |arg| {
        conversation(Input::Topics(arg.parse::<usize>().map_or(0, |p| p.saturating_sub(1))))
    }),
    spec("more", &["more", "next"], "Next section of the article", Audience::Everyone, |_| conversation(Input::More)),
    CommandSpec {
        listed: false,
        ..spec("back", &["back"], "Back to the previous article", Audience::Everyone, |_| conversation(Input::Back))
    },
    CommandSpec {
        listed: false,
        ..spec("up", &["up", "👍"], "This answer helped", Audience::Everyone, |_| {
            conversation(Input::Rate { up: true })
        })
    },
    CommandSpec {
        listed: false,
        ..spec("down", &["down", "👎"], "This answer did not help", Audience::Everyone, |_| {
            conversation(Input::Rate { up: false })
        })
    },
    CommandSpec {
        listed: false,
        ..spec("none", &["none", "none of these"], "None of the suggestions fits", Audience::Everyone, |_| {
            conversation(Input::NoneOfThese)
        })
    },
    spec("reset", &[], "Start over", Audience::Everyone, |_| conversation(Input::Reset)),
    spec("forget", &[], "Delete everything stored about you", Audience::Everyone, |_| conversation(Input::Forget)),
    spec("reload", &[], "Reload the knowledge base", Audience::Admins, |arg| {
        Command::Admin(match arg {
            "" => AdminCommand::Reload { force: false },
            a if a.eq_ignore_ascii_case("force") => AdminCommand::Reload { force: true },
            _ => AdminCommand::Usage(
                "/reload, or /reload force to swap in a knowledge base that breaks questions added by review",
            ),
        })
    }),
    spec("stats", &[], "Usage statistics", Audience::Admins, |_| Command::Admin(AdminCommand::Stats)),
    spec("unanswered", &[], "Questions without an answer", Audience::Admins, |_| {
        Command::Admin(AdminCommand::Unanswered)
    }),
    spec("why", &[], "Why a question gets the answer it gets", Audience::Admins, |q| {
        Command::Admin(AdminCommand::Why(q.to_string()))
    }),
    spec("review", &[], "Review questions to add to articles", Audience::Admins, |arg| {
        Command::Admin(match arg {
            "" => AdminCommand::Review { undo: false },
            a if a.eq_ignore_ascii_case("undo") => AdminCommand::Review { undo: true },
            _ => AdminCommand::Usage("/review, or /review undo to take back the last decision"),
        })
    }),
];

/// The command named `name` or one of its words (`/next`), ASCII case ignored.
pub fn command(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(name) || c.words.iter().any(|w| w.eq_ignore_ascii_case(name)))
}

/// The commands listed for `audience`: everyone's, and for admins theirs too.
pub fn listed(audience: Audience) -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS.iter().filter(move |c| c.listed && (c.audience == Audience::Everyone || audience == Audience::Admins))
}

/// A whole message that is a command in every front end: a command's word ("more", "back"), or a
/// number answering the choices of the last reply. Decided before anything else, so that a
/// redelivered step is recognised whether it came as a button, a command or typed text.
pub fn typed(text: &str) -> Option<Input> {
    let t = text.trim();
    // A command where only text is read (the console, `ask`): never a question to record.
    // Commands this conversation does not have (another bot's, an admin's) get the help.
    if let Some(name) = t.strip_prefix('/') {
        let (head, arg) = name.split_once(char::is_whitespace).map_or((name, ""), |(h, a)| (h, a));
        if !head.is_empty() && head.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@') {
            let name = head.split('@').next().unwrap_or(head);
            return Some(match command(name).map(|c| c.with_argument(arg)) {
                Some(Command::Conversation(input)) => input,
                _ => Input::Help,
            });
        }
    }
    for c in COMMANDS.iter().filter(|c| c.audience == Audience::Everyone) {
        if c.words.iter().any(|w| t.eq_ignore_ascii_case(w)) {
            if let Command::Conversation(input) = c.with_argument("") {
                return Some(input);
            }
        }
    }
    // A number with no words is a choice, never a question: it would match whatever text
    // happens to hold that digit. With nothing to choose from it gets "no such choice".
    if t.chars().any(|c| c.is_numeric()) && !t.chars().any(char::is_alphabetic) {
        return Some(Input::Pick(t.trim_end_matches(['.', ')']).parse::<usize>().unwrap_or(0)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_menus_follow_the_audience() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert!(COMMANDS[..i].iter().all(|o| o.name != c.name), "{} twice", c.name);
            assert!(c.name.bytes().all(|b| b.is_ascii_lowercase()), "Telegram wants lower-case names");
        }
        let everyone: Vec<&str> = listed(Audience::Everyone).map(|c| c.name).collect();
        assert_eq!(everyone, ["start", "help", "topics", "more", "reset", "forget"]);
        let admins: Vec<&str> = listed(Audience::Admins).map(|c| c.name).collect();
        assert_eq!(&admins[..everyone.len()], everyone.as_slice());
        assert_eq!(&admins[everyone.len()..], ["reload", "stats", "unanswered", "why", "review"]);
    }

    #[test]
    fn commands_take_their_arguments() {
        let run = |name: &str, arg: &str| command(name).map(|c| c.with_argument(arg));
        assert_eq!(run("START", " knee-pain "), Some(Command::Conversation(Input::Start(Some("knee-pain".into())))));
        assert_eq!(run("start", ""), Some(Command::Conversation(Input::Start(None))));
        assert_eq!(run("topics", "3"), Some(Command::Conversation(Input::Topics(2))));
        assert_eq!(run("topics", "x"), Some(Command::Conversation(Input::Topics(0))));
        assert_eq!(run("reload", ""), Some(Command::Admin(AdminCommand::Reload { force: false })));
        assert_eq!(run("reload", "force"), Some(Command::Admin(AdminCommand::Reload { force: true })));
        assert_eq!(run("why", " knee pain "), Some(Command::Admin(AdminCommand::Why("knee pain".into()))));
        assert_eq!(run("review", ""), Some(Command::Admin(AdminCommand::Review { undo: false })));
        assert_eq!(run("review", " UNDO "), Some(Command::Admin(AdminCommand::Review { undo: true })));
        assert!(matches!(run("review", "all"), Some(Command::Admin(AdminCommand::Usage(_)))));
        assert_eq!(run("next", ""), Some(Command::Conversation(Input::More)), "a command's word works as a name");
        assert_eq!(run("whatever", ""), None);
    }

    #[test]
    fn typed_words_and_numbers() {
        assert_eq!(typed(" More "), Some(Input::More));
        assert_eq!(typed("NEXT"), Some(Input::More));
        assert_eq!(typed("back"), Some(Input::Back));
        assert_eq!(typed("2."), Some(Input::Pick(2)));
        assert_eq!(typed("3)"), Some(Input::Pick(3)));
        assert_eq!(typed("-1"), Some(Input::Pick(0)));
        assert_eq!(typed("more please"), None);
        assert_eq!(typed("3 weeks"), None);
        assert_eq!(typed("reset"), None, "only the words a command lists");
        assert_eq!(typed("up"), Some(Input::Rate { up: true }));
        assert_eq!(typed("👎"), Some(Input::Rate { up: false }));
        assert_eq!(typed("None of these"), Some(Input::NoneOfThese));
        assert_eq!(typed("/foo"), Some(Input::Help), "an unknown command is not a question");
        assert_eq!(typed("/stats"), Some(Input::Help), "nor is an admin's");
        assert_eq!(typed("/topics 2"), Some(Input::Topics(1)));
        assert_eq!(typed("/ what is this"), None);
    }
}

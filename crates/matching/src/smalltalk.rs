//! Recognising messages that are not questions about the articles: greetings, thanks, goodbyes
//! and questions about the bot itself. Only messages made entirely of such words (and stop words)
//! count, so "hi, my knee hurts" is still a question.

use super::normalize::{Analysis, Normalizer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Smalltalk {
    Greeting,
    Thanks,
    Goodbye,
    /// "who are you", "what's your name", "what can you do".
    Identity,
}

const GREETING: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "heya",
    "hiya",
    "howdy",
    "yo",
    "greetings",
    "sup",
    "hallo",
    "hola",
    "bonjour",
    "salut",
    "ciao",
    "ola",
    "hej",
    "moin",
    "servus",
    "namaste",
    "привет",
    "здравствуйте",
    "здравствуи",
    "приветствую",
    "добрыи",
    "вечер",
    "утро",
    "morning",
    "afternoon",
    "evening",
    "gm",
];
const THANKS: &[&str] = &[
    "thanks",
    "thank",
    "thx",
    "thnx",
    "ty",
    "tysm",
    "cheers",
    "appreciate",
    "appreciated",
    "grateful",
    "спасибо",
    "благодарю",
    "gracias",
    "merci",
    "danke",
    "grazie",
    "obrigado",
    "obrigada",
    "arigato",
    "谢谢",
    "감사합니다",
];
const GOODBYE: &[&str] = &["bye", "goodbye", "byebye", "cya", "farewell", "пока", "adios", "tschuss", "goodnight"];
const IDENTITY: &[&str] = &[
    "name",
    "bot",
    "robot",
    "human",
    "ai",
    "person",
    "real",
    "yourself",
    "called",
    "made",
    "built",
    "created",
    "работаешь",
    "зовут",
    "ты",
    "кто",
];
/// Words that add nothing to small talk: contractions without their apostrophe, fillers.
const FILLER: &[&str] = &[
    "whats", "hows", "whos", "im", "ive", "id", "youre", "its", "thats", "theres", "lets", "cant", "dont", "wont",
    "isnt", "arent", "there", "guys", "everyone", "folks", "buddy", "friend", "mate", "much", "lot", "again", "ok",
    "okay", "cool", "great", "nice", "awesome", "good", "day", "night", "see", "later", "u", "ur", "r", "please",
    "help", "work", "tell", "bro", "dear", "all", "big", "many", "really", "one", "up", "new", "going", "go", "doing",
];
const YOU: &[&str] = &["you", "your", "yourself", "u", "ur", "ты", "тебя", "вы"];

pub fn detect(normalizer: &Normalizer, text: &str, analysis: &Analysis) -> Option<Smalltalk> {
    if analysis.words.is_empty() {
        return emoji_only(text);
    }
    let (mut greet, mut thanks, mut bye, mut identity, mut you) = (false, false, false, false, false);
    for w in &analysis.words {
        let s = analysis.surface(w);
        let known = |list: &[&str]| list.contains(&s);
        if known(GREETING) {
            greet = true;
        } else if known(THANKS) {
            thanks = true;
        } else if known(GOODBYE) {
            bye = true;
        } else if known(IDENTITY) {
            identity = true;
        } else if known(YOU) {
            you = true;
        } else if !(w.stop || normalizer.is_stop_word(s) || known(FILLER)) {
            return None;
        }
    }
    // "see you" is the only way FILLER words alone say goodbye.
    let see_you =
        analysis.words.windows(2).any(|p| analysis.surface(&p[0]) == "see" && YOU.contains(&analysis.surface(&p[1])));
    let how = analysis.words.iter().any(|w| analysis.surface(w) == "how");
    if thanks {
        Some(Smalltalk::Thanks)
    } else if bye || see_you {
        Some(Smalltalk::Goodbye)
    } else if identity || (you && !greet && !how) {
        Some(Smalltalk::Identity)
    } else if greet || (you && how) {
        Some(Smalltalk::Greeting)
    } else {
        None
    }
}

fn emoji_only(text: &str) -> Option<Smalltalk> {
    let t = text.trim();
    if t.contains('👋') {
        Some(Smalltalk::Greeting)
    } else if t.contains('🙏') || t.contains('👍') || t.contains('❤') {
        Some(Smalltalk::Thanks)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<Smalltalk> {
        let n = Normalizer::new("english");
        let mut a = Analysis::default();
        n.analyze(text, &mut a);
        detect(&n, text, &a)
    }

    #[test]
    fn recognises_small_talk() {
        assert_eq!(kind("Hi there!"), Some(Smalltalk::Greeting));
        assert_eq!(kind("hello"), Some(Smalltalk::Greeting));
        assert_eq!(kind("Привет"), Some(Smalltalk::Greeting));
        assert_eq!(kind("thanks a lot!"), Some(Smalltalk::Thanks));
        assert_eq!(kind("Thank you so much"), Some(Smalltalk::Thanks));
        assert_eq!(kind("ok bye"), Some(Smalltalk::Goodbye));
        assert_eq!(kind("see you"), Some(Smalltalk::Goodbye));
        assert_eq!(kind("who are you?"), Some(Smalltalk::Identity));
        assert_eq!(kind("What’s your name"), Some(Smalltalk::Identity));
        assert_eq!(kind("are you a bot"), Some(Smalltalk::Identity));
        assert_eq!(kind("how are you"), Some(Smalltalk::Greeting));
        assert_eq!(kind("👋"), Some(Smalltalk::Greeting));
    }

    #[test]
    fn questions_are_not_small_talk() {
        assert_eq!(kind("hi, my knee hurts after running"), None);
        assert_eq!(kind("thanks, but how do I stretch calves?"), None);
        assert_eq!(kind("how to cook rice"), None);
        assert_eq!(kind("what is it"), None);
        assert_eq!(kind("🏃"), None);
    }
}

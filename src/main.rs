//! `articlebot`: the command line (`cli`) and the Telegram bot (`telegram`), two front ends of
//! `articlebot_engine`. They translate between people and the engine; nothing here decides what
//! to answer.

mod cli;
mod telegram;

fn main() -> std::process::ExitCode {
    cli::main()
}

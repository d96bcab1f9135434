//! `articlebot`: the command line (`cli`) and the Telegram bot (`telegram`), two front ends of
//! `articlebot_engine`, and `site`, the import of a website that both run (`import`, `serve
//! --sync-every`). They translate between people and the engine; nothing here decides what to
//! answer.

mod cli;
mod site;
mod telegram;

fn main() -> std::process::ExitCode {
    cli::main()
}

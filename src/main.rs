//! `articlebot`: the command line (`cli`) and the Telegram bot (`telegram`), two front ends of
//! `articlebot_engine`, and `site`, the import of a website that both run (`import`, `serve
//! --sync-every`). They translate between people and the engine; nothing here decides what to
//! answer. `owner` is the owner's tools on the database, shared by both; `store` is where the
//! database is (sled in a dir, or a PostgreSQL server).

mod cli;
mod owner;
mod site;
mod store;
mod telegram;

fn main() -> std::process::ExitCode {
    cli::main()
}

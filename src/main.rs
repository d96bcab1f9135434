fn main() -> std::process::ExitCode {
    articlebot::cli::main()
}

fn main() {
    goroscope::startup::mark_start();
    let cli = goroscope::cli::parse();
    if let Err(e) = goroscope::cli::run(cli) {
        eprintln!("goroscope: {e}");
        std::process::exit(1);
    }
}

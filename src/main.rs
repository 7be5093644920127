fn main() {
    goroscope::startup::mark_start();
    goroscope::startup::tune_allocator();
    let cli = goroscope::cli::parse();
    if let Err(e) = goroscope::cli::run(cli) {
        // The message may name things from the target (paths, names): one safe line.
        eprintln!(
            "goroscope: {}",
            goroscope::render::safe::text(&e.to_string())
        );
        std::process::exit(1);
    }
    match goroscope::cli::status() {
        0 => {}
        n => std::process::exit(n),
    }
}

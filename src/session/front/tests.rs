use super::input::{MAX_HISTORY, MAX_HISTORY_BYTES};
use super::*;

#[test]
fn history_reads_a_bounded_tail_of_its_file() {
    let dir = std::env::temp_dir().join(format!("goroscope-history-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history");
    // Longer than MAX_HISTORY_BYTES, more lines than MAX_HISTORY.
    let text: String = (0..40_000).map(|i| format!("goroutine {i}\n")).collect();
    assert!(text.len() as u64 > MAX_HISTORY_BYTES);
    std::fs::write(&path, text).unwrap();
    let lines = History::read(&path).unwrap();
    assert_eq!(lines.len(), MAX_HISTORY);
    assert_eq!(lines.last().map(String::as_str), Some("goroutine 39999"));
    assert_eq!(lines[0], format!("goroutine {}", 40_000 - MAX_HISTORY));
    let mut h = History {
        path: None,
        lines,
        quiet: true,
        warned: false,
    };
    h.add("goroutine 39999");
    h.add("  ");
    h.add("threads");
    assert_eq!(
        (h.lines.len(), h.lines.last().map(String::as_str)),
        (MAX_HISTORY, Some("threads"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

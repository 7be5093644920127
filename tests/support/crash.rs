//! The crash traceback as an oracle: what the runtime printed on SIGQUIT (`GOTRACEBACK=all`,
//! `system` or `crash`: level 2, every goroutine with `fp= sp= pc=`) against a level-2 dump by
//! goroscope of the same process (live, just before the signal) or of its core.

/// The crash traceback's goroutines: up to the first register dump, without goroutine 0.
pub fn crash_oracle(stderr: &str) -> String {
    let mut text = String::new();
    for line in stderr.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if matches!(first, "rax" | "r0" | "x0" | "-----") {
            break;
        }
        text.push_str(line);
        text.push('\n');
    }
    let start = text
        .find("\ngoroutine ")
        .map(|i| i + 1)
        .unwrap_or(text.len());
    text[start..]
        .split("\n\n")
        .filter(|b| !b.trim().is_empty() && !b.starts_with("goroutine 0 "))
        .map(|b| b.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The level-2 comparison: every goroutine of the oracle must be in goroscope's dump in the
/// same order, and no other; a parked one (not running/runnable) must be printed identically,
/// byte for byte (header, arguments, `fp= sp= pc=`, created-by); the runtime prints running
/// ones as "running on other thread", and goroscope must list them with any stack.
///
/// The runtime prints the goroutine of the thread that handled the signal first; goroscope
/// puts the goroutine of a core's first thread (the one that aborted) first, and lists a live
/// process in `allgs` order. For a core from Go 1.22 on those are the same thread; before, the
/// SIGQUIT was relayed from M to M and the last one aborted. With `first_may_move` the
/// runtime's first goroutine may be anywhere in goroscope's order.
pub fn compare_crash(dump: &str, oracle: &str, first_may_move: bool) -> Result<(), String> {
    let g = super::traceback::parse(dump);
    let r = super::traceback::parse(oracle);
    let mut problems = Vec::new();
    if r.goroutines.is_empty() {
        problems.push(format!("the crash traceback has no goroutines:\n{oracle}"));
    }
    let mut gids: Vec<u64> = g.goroutines.iter().map(|g| g.id).collect();
    let mut rids: Vec<u64> = r.goroutines.iter().map(|g| g.id).collect();
    if first_may_move && !rids.is_empty() && gids.contains(&rids[0]) {
        let first = rids.remove(0);
        gids.retain(|&id| id != first);
    }
    if gids != rids {
        problems.push(format!("goroutines {gids:?}, the runtime printed {rids:?}"));
    }
    for rg in &r.goroutines {
        let Some(gg) = g.goroutines.iter().find(|g| g.id == rg.id) else {
            continue;
        };
        if rg.is_parked() {
            if gg.raw.trim_end() != rg.raw.trim_end() {
                problems.push(format!(
                    "goroutine {} differs\n--- runtime\n{}\n+++ goroscope\n{}",
                    rg.id, rg.raw, gg.raw
                ));
            }
        } else if gg.frames.is_empty() && !gg.running_elsewhere {
            problems.push(format!(
                "goroutine {} [{}]: goroscope shows no frames\n{}",
                rg.id, rg.state, gg.raw
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n\n"))
    }
}

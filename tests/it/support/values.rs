//! The fixture's "values" scenario: the truths it prints of its variables (`INFO value <goid>
//! <function> <expr>\t<text>`) and the expressions every toolchain's DWARF keeps readable,
//! for `tests/values.rs` and the arm64 VM's run of the same scenario.

use std::collections::BTreeMap;

/// Expressions every toolchain's DWARF keeps live where the fixture's goroutines park
/// (measured on Go 1.19 and 1.21–1.27): (function, expression). [`LIVE_FROM_1_22`] holds those
/// Go 1.19–1.21 describe with a piece too many (printed as unreadable there).
pub const ALWAYS_LIVE: &[(&str, &str)] = &[
    ("main.vaOuter", "depth"),
    ("main.vaOuter", "label"),
    ("main.vaBasic", "n"),
    ("main.vaBasic", "s"),
    ("main.vaBasic", "f"),
    ("main.vaBasic", "ok"),
    ("main.vaBasic", "sum"),
    ("main.vaBasic", "word"),
    ("main.vaBasic", "len(word)"),
    ("main.vaStructs", "r.Name"),
    ("main.vaStructs", "r.At"),
    ("main.vaDynamic", "len(ch)"),
    ("main.vaDynamic", "cap(ch)"),
    ("main.vaDynamic", "ch"),
    ("main.vaDynamic", "done"),
    ("main.vaDynamic", "len(m)"),
    ("main.vaDynamic", "m[\"two\"]"),
    ("main.vaDynamic", "len(big)"),
    ("main.vaDynamic", "big[7]"),
    ("main.vaDynamic", "big[39]"),
    ("main.vaDynamic", "*rw"),
    // Goroutines queued on a channel.
    ("main.vaChans", "recv"),
    ("main.vaChans", "send"),
    // time.Duration, time.Time (UTC with a monotonic reading, a fixed zone), sync.WaitGroup.
    ("main.vaTimes", "d"),
    ("main.vaTimes", "short"),
    ("main.vaTimes", "tiny"),
    ("main.vaTimes", "clock.Start"),
    ("main.vaTimes", "clock.Zoned"),
    ("main.vaTimes", "clock.Timeout"),
    ("main.vaTimes", "*clock"),
    ("main.vaTimes", "*wg"),
    // Named zones outside the cached one: transitions before, between and after, TZ rules.
    ("main.vaZones", "z.Early"),
    ("main.vaZones", "z.Summer"),
    ("main.vaZones", "z.Winter"),
    ("main.vaZones", "z.Later"),
    ("main.vaZones", "z.LaterWinter"),
    ("main.vaZones", "z.South"),
    ("main.vaZones", "z.SouthWinter"),
    // An inlined call's own scope.
    ("main.vaInlined", "a"),
    ("main.vaInliner", "base"),
    // Running: read from its thread's registers (y from a floating-point one).
    ("main.vaSpin", "n"),
    ("main.vaSpin", "k"),
    ("main.vaSpin", "y"),
];

/// Expressions readable from Go 1.22 on (see [`ALWAYS_LIVE`]).
pub const LIVE_FROM_1_22: &[(&str, &str)] = &[
    ("main.vaStructs", "rooms[1].Name"),
    ("main.vaStructs", "len(rooms)"),
    ("main.vaDynamic", "any"),
    ("main.vaDynamic", "str.Name"),
];

/// A goroutine and one of its functions.
pub type Key = (u64, String);

/// The truths the fixture printed: (goid, function) → [(expr, text)].
pub type Truths = BTreeMap<Key, Vec<(String, String)>>;

/// The truths in the fixture's INFO lines (`INFO ` left off).
pub fn truths(lines: &[String]) -> Truths {
    let mut t = Truths::new();
    for l in lines {
        let Some(rest) = l.strip_prefix("value ") else {
            continue;
        };
        let (head, text) = rest.split_once('\t').expect("value line has a tab");
        let mut w = head.split(' ');
        let (id, func, expr) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
        t.entry((id.parse().unwrap(), func.to_string()))
            .or_default()
            .push((expr.to_string(), text.to_string()));
    }
    assert!(!t.is_empty(), "the fixture printed no values");
    t
}

/// Compares the values of goroutine `goid`'s frames in `bt --full --json` output (`g`) with
/// the truths: each value of a variable with a truth is that truth (then (function, name) goes
/// to `readable`) or says it is not there; anything else goes to `failures`.
pub fn compare_frames(
    goid: u64,
    g: &serde_json::Value,
    truths: &Truths,
    readable: &mut Vec<(String, String)>,
    failures: &mut Vec<String>,
) {
    for f in g["frames"].as_array().into_iter().flatten() {
        let func = f["function"].as_str().unwrap_or_default();
        let Some(t) = truths.get(&(goid, func.to_string())) else {
            continue;
        };
        for val in f["values"].as_array().into_iter().flatten() {
            let name = val["name"].as_str().unwrap_or_default();
            let text = val["text"].as_str().unwrap_or_default();
            let Some((_, truth)) = t.iter().find(|(e, _)| e == name) else {
                continue;
            };
            if text == truth {
                readable.push((func.to_string(), name.to_string()));
            } else if !not_there(text) {
                failures.push(format!(
                    "goroutine {goid} {func}: {name} = {text}, the fixture says {truth}"
                ));
            }
        }
    }
}

/// A value goroscope says is not there: not live at the pc, or not readable.
pub fn not_there(v: &str) -> bool {
    v.starts_with("(optimized out)") || v.starts_with("(unreadable")
}

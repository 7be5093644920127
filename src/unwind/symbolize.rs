//! From physical frames to the logical frames a traceback prints, with the runtime's rules
//! for which frames its default traceback hides (`showfuncinfo`, `isSystemGoroutine`,
//! `printcreatedby` in `src/runtime/traceback.go`).

use super::{Code, PhysFrame, Unwound};
use crate::binary::pclntab::{FUNCDATA_ARG_INFO, FUNCDATA_ARG_LIVE_INFO, PCDATA_ARG_LIVE_INDEX};
use crate::snapshot::{CreatedBy, Frame};
use crate::target::{MemoryReader, ReadExt};
use std::fmt::Write;

/// Logical frames of an unwound stack, innermost first, with `hidden` set as the runtime's
/// default (GOTRACEBACK=single/all) traceback would hide them.
pub fn logical_frames(code: Code<'_>, mem: &impl MemoryReader, unwound: &Unwound) -> Vec<Frame> {
    let tab = code.tab;
    let mut out = Vec::with_capacity(unwound.frames.len() * 2);
    let mut callee = 0u8;
    let mut shown = 0usize;
    for pf in &unwound.frames {
        let entry = tab.entry(pf.func);
        let mut args = None;
        for sf in tab.frames_at(pf.func, pf.sym_pc(tab)) {
            if !sf.inlined && args.is_none() {
                // Go 1.19's gentraceback looks argument liveness up at the outermost inlined
                // call site (its tracepc after the inline walk); 1.20+ at the frame's own pc.
                let live_pc = if tab.is_go120() { pf.sym_pc(tab) } else { sf.pc };
                args = Some(print_args(code, mem, pf, live_pc));
            }
            let show = show_func(code, sf.name, sf.func_id, shown == 0, callee);
            callee = sf.func_id;
            if show {
                shown += 1;
            }
            out.push(Frame {
                function: sf.name.to_string(),
                file: sf.file.to_string(),
                line: sf.line,
                pc: pf.pc,
                entry,
                sp: pf.sp,
                fp: pf.fp,
                args: if sf.inlined { "...".to_string() } else { args.clone().unwrap_or_default() },
                inlined: sf.inlined,
                hidden: !show,
            });
        }
    }
    out
}

/// Most argument-info bytes read (`abi.TraceArgsMaxLen`: (5*3+2)*10+1).
const TRACE_ARGS_MAX_LEN: usize = 171;

/// `printArgs`: the argument words of a physical frame as the runtime prints them, from
/// `FUNCDATA_ArgInfo` and the spill slots at `argp = fp + MinFrameSize`; `?` marks a slot
/// that is not live at `pc`. `...` when the frame's memory cannot be read.
pub fn print_args(code: Code<'_>, mem: &impl MemoryReader, pf: &PhysFrame, pc: u64) -> String {
    let tab = code.tab;
    let Some(p) = tab.funcdata_bytes(pf.func, FUNCDATA_ARG_INFO) else { return String::new() };
    let p = &p[..p.len().min(TRACE_ARGS_MAX_LEN)];
    let live = tab.funcdata_bytes(pf.func, FUNCDATA_ARG_LIVE_INFO);
    let live_idx = tab.pcdata(pf.func, PCDATA_ARG_LIVE_INDEX, pc).unwrap_or(-1);
    let start_offset = live.and_then(|l| l.first().copied()).unwrap_or(0xff);
    let is_live = |off: u8, slot: u8| -> bool {
        let Some(l) = live else { return true };
        if live_idx <= 0 || off < start_offset {
            return true;
        }
        match l.get(live_idx as usize + (slot / 8) as usize) {
            Some(bits) => bits & (1 << (slot % 8)) != 0,
            None => true,
        }
    };
    let argp = pf.fp.wrapping_add(code.arch.min_frame_size());
    let mut out = String::new();
    let mut start = true;
    let mut slot = 0u8;
    let mut i = 0usize;
    while let Some(&o) = p.get(i) {
        i += 1;
        let comma = |out: &mut String, start: bool| {
            if !start {
                out.push_str(", ");
            }
        };
        match o {
            0xff => break,
            0xfe => {
                comma(&mut out, start);
                out.push('{');
                start = true;
                continue;
            }
            0xfd => out.push('}'),
            0xfc => {
                comma(&mut out, start);
                out.push_str("...");
            }
            0xfb => {
                comma(&mut out, start);
                out.push('_');
            }
            _ => {
                comma(&mut out, start);
                let Some(&sz) = p.get(i) else { break };
                i += 1;
                let Ok(mut x) = mem.read_u64(argp.wrapping_add(o as u64)) else { return "...".to_string() };
                if sz < 8 {
                    let shift = 64 - u32::from(sz) * 8;
                    x = (x << shift) >> shift;
                }
                let _ = write!(out, "{x:#x}");
                if !is_live(o, slot) {
                    out.push('?');
                }
                if o >= start_offset {
                    slot = slot.wrapping_add(1);
                }
            }
        }
        start = false;
    }
    out
}

/// `showfuncinfo` at traceback level 1.
pub fn show_func(code: Code<'_>, name: &str, func_id: u8, first_frame: bool, callee: u8) -> bool {
    let ids = code.ids;
    if func_id != 0 && Some(func_id) == ids.wrapper {
        let elide = !(callee != 0
            && (Some(callee) == ids.gopanic || Some(callee) == ids.sigpanic || Some(callee) == ids.panicwrap));
        if elide {
            return false;
        }
    }
    // Go 1.25+ always shows the finalizer and cleanup runners.
    if name == "runtime.runFinalizers" || name == "runtime.runCleanups" {
        return true;
    }
    if name == "runtime.gopanic" && !first_frame {
        return true;
    }
    name.contains('.') && (!name.starts_with("runtime.") || is_exported_runtime(name))
}

/// `isExportedRuntime`: `runtime.X` or `runtime.(*T).X` / `runtime.T.X` with exported names.
pub fn is_exported_runtime(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("runtime.") else { return false };
    let (mut rcvr, fname) = match rest.rfind('.') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => ("", rest),
    };
    if rcvr.len() >= 3 && rcvr.starts_with("(*") && rcvr.ends_with(')') {
        rcvr = &rcvr[2..rcvr.len() - 1];
    }
    let upper = |s: &str| s.as_bytes().first().is_some_and(|c| c.is_ascii_uppercase());
    upper(fname) && (rcvr.is_empty() || upper(rcvr))
}

/// `isSystemGoroutine` (with `fixed == false`): goroutines started in the runtime are hidden
/// from default tracebacks, except `runtime.main`, coroutines and async event handlers.
/// The finalizer and cleanup goroutines count as system goroutines here; the runtime shows
/// them only while they run user code.
pub fn is_system_goroutine(code: Code<'_>, startpc: u64) -> bool {
    let Some(f) = code.tab.func_for_pc(startpc) else { return false };
    let id = code.tab.func_id(f);
    let ids = code.ids;
    if id != 0 && (Some(id) == ids.runtime_main || Some(id) == ids.corostart || Some(id) == ids.handle_async_event) {
        return false;
    }
    code.tab.name(f).starts_with("runtime.")
}

/// `printcreatedby`: the `go` statement at `gopc`, for any goroutine but goroutine 1.
pub fn created_by(code: Code<'_>, goid: u64, gopc: u64) -> Option<CreatedBy> {
    if goid == 1 {
        return None;
    }
    let tab = code.tab;
    let f = tab.func_for_pc(gopc)?;
    let entry = tab.entry(f);
    let name = tab.name(f);
    let hidden = !show_func(code, name, tab.func_id(f), false, 0);
    let tracepc = if gopc > entry { gopc - code.arch.pc_quantum() } else { gopc };
    let (file, line) = tab.file_line(f, tracepc).unwrap_or(("?", 0));
    Some(CreatedBy { function: name.to_string(), file: file.to_string(), line, pc: gopc, entry, hidden })
}

/// The name a traceback prints: generic shapes as `[...]` (`funcNameForPrint`), and
/// `runtime.gopanic` as `panic` (`printFuncName`).
pub fn print_name(name: &str) -> String {
    if name == "runtime.gopanic" {
        return "panic".to_string();
    }
    let Some(i) = name.find('[') else { return name.to_string() };
    let Some(j) = name.rfind(']') else { return name.to_string() };
    if j <= i {
        return name.to_string();
    }
    let interior = &name[i + 1..j];
    if !interior.contains('[') {
        return format!("{}[...]{}", &name[..i], &name[j + 1..]);
    }
    // A generic method of a generic type: "...]___[..." inside the outer brackets.
    let mut depth = 1i32;
    let (mut rbr, mut lbr) = (None, None);
    for (k, c) in interior.char_indices() {
        if c == '[' {
            depth += 1;
            if depth != 1 {
                continue;
            }
            lbr = Some(k);
            break;
        }
        if c == ']' {
            depth -= 1;
            if depth < 0 {
                break;
            }
            if depth != 0 {
                continue;
            }
            rbr = Some(k);
        }
    }
    if depth == 1 {
        match (rbr, lbr) {
            (Some(r), Some(l)) if l > r => {
                return format!("{}[...]{}[...]{}", &name[..i], &interior[r + 1..l], &name[j + 1..]);
            }
            (None, None) => return format!("{}[...]{}", &name[..i], &name[j + 1..]),
            _ => {}
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_runtime_names() {
        assert!(is_exported_runtime("runtime.Gosched"));
        assert!(is_exported_runtime("runtime.(*Frames).Next"));
        assert!(!is_exported_runtime("runtime.gopark"));
        assert!(!is_exported_runtime("runtime.(*mheap).alloc"));
        assert!(!is_exported_runtime("main.main"));
    }

    #[test]
    fn generic_names_print_with_dots() {
        assert_eq!(print_name("main.Map[go.shape.int]"), "main.Map[...]");
        assert_eq!(print_name("main.(*List[go.shape.int]).Push"), "main.(*List[...]).Push");
        assert_eq!(print_name("main.G[go.shape.int].M[go.shape.string]"), "main.G[...].M[...]");
        assert_eq!(print_name("runtime.gopanic"), "panic");
        assert_eq!(print_name("main.f"), "main.f");
    }
}

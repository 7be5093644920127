use super::*;

const HDR: usize = 72;

/// Builds a minimal well-formed Go 1.20 pclntab with one function "main.f" at text offset
/// 0x10..0x30 and a pcsp table.
fn build() -> Vec<u8> {
    let mut d = vec![0u8; HDR];
    d[0..4].copy_from_slice(&MAGIC_GO120.to_le_bytes());
    d[6] = 1;
    d[7] = 8;
    let put = |d: &mut Vec<u8>, i: usize, v: u64| {
        d[8 + i * 8..16 + i * 8].copy_from_slice(&v.to_le_bytes())
    };
    put(&mut d, 0, 1); // nfunc
    put(&mut d, 1, 1); // nfiles
    put(&mut d, 2, 0x1000); // textStart
    // funcnametab
    let fnt = d.len();
    d.extend_from_slice(b"\0main.f\0");
    // cutab: one entry -> file offset 0
    let cut = d.len();
    d.extend_from_slice(&0u32.to_le_bytes());
    // filetab
    let ft = d.len();
    d.extend_from_slice(b"/x/main.go\0");
    // pctab: byte 0 unused, then tables
    let pct = d.len();
    d.push(0);
    let pcsp = 1u32;
    // value 0 (delta +1 from -1 => uv=2) for 0x10 bytes, then value 8 (uv=16) for 0x10, end
    d.extend_from_slice(&[2, 0x10, 16, 0x10, 0]);
    let pcfile = 6u32;
    d.extend_from_slice(&[2, 0x20, 0]); // file 0
    let pcln = 9u32;
    d.extend_from_slice(&[22, 0x20, 0]); // line 10
    while !d.len().is_multiple_of(4) {
        d.push(0);
    }
    let fnc = d.len();
    put(&mut d, 3, fnt as u64);
    put(&mut d, 4, cut as u64);
    put(&mut d, 5, ft as u64);
    put(&mut d, 6, pct as u64);
    put(&mut d, 7, fnc as u64);
    // functab: 2 entries
    d.extend_from_slice(&0x10u32.to_le_bytes());
    d.extend_from_slice(&16u32.to_le_bytes());
    d.extend_from_slice(&0x30u32.to_le_bytes());
    d.extend_from_slice(&0u32.to_le_bytes());
    // _func
    let mut f = [0u8; 44];
    f[0..4].copy_from_slice(&0x10u32.to_le_bytes());
    f[4..8].copy_from_slice(&1u32.to_le_bytes());
    f[16..20].copy_from_slice(&pcsp.to_le_bytes());
    f[20..24].copy_from_slice(&pcfile.to_le_bytes());
    f[24..28].copy_from_slice(&pcln.to_le_bytes());
    f[36..40].copy_from_slice(&9i32.to_le_bytes());
    f[41] = func_flag::TOP_FRAME;
    d.extend_from_slice(&f);
    d
}

#[test]
fn good() {
    let t = Pclntab::parse(build()).unwrap();
    assert!(t.is_go120());
    assert_eq!(t.nfunc(), 1);
    assert_eq!(t.header_text_start(), 0x1000);
    let f = t.func_for_pc(0x1015).unwrap();
    assert_eq!(t.name(f), "main.f");
    assert_eq!(t.entry(f), 0x1010);
    assert_eq!(t.end(f), 0x1030);
    assert_eq!(t.flag(f), func_flag::TOP_FRAME);
    assert_eq!(t.start_line(f), 9);
    assert_eq!(t.pcsp(f, 0x1010), Some(0));
    assert_eq!(t.pcsp(f, 0x1025), Some(8));
    assert_eq!(t.pcsp(f, 0x1030), None);
    assert_eq!(t.file_line(f, 0x1011), Some(("/x/main.go", 10)));
    assert_eq!(t.func_by_name("main.f"), Some(f));
    assert_eq!(t.func_by_name("main.g"), None);
    assert!(t.func_for_pc(0x100f).is_none());
    assert!(t.func_for_pc(0x1030).is_none());
    assert!(t.func_for_pc(0).is_none());
    assert_eq!(t.funcdata_offset(f, 0), None);
    assert_eq!(t.pcdata(f, 0, 0x1010), None);
    let fr = t.frames_at(f, 0x1011);
    assert_eq!(fr.len(), 1);
    assert!(!fr[0].inlined);
}

#[test]
fn inline_tree() {
    let mut d = build();
    // Give the function npcdata = 3 (pcdata[2] = inline index table) and nfuncdata = 4.
    let fnc_off = d.len() - 44;
    // pctab lives before the functab; append the inline table at the end of the data
    // is not possible (pctab is bounded), so rebuild: place new table in pctab by reusing
    // pcfile's table (value 0 everywhere) as InlTreeIndex => record 0 everywhere.
    d[fnc_off + 28..fnc_off + 32].copy_from_slice(&3u32.to_le_bytes());
    d[fnc_off + 43] = 4;
    d.extend_from_slice(&0u32.to_le_bytes()); // pcdata[0]
    d.extend_from_slice(&0u32.to_le_bytes()); // pcdata[1]
    d.extend_from_slice(&6u32.to_le_bytes()); // pcdata[2] -> value 0 over whole func
    for _ in 0..3 {
        d.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    d.extend_from_slice(&8u32.to_le_bytes()); // funcdata[3] = gofunc+8
    let mut t = Pclntab::parse(d).unwrap();
    let f = t.func_for_pc(0x1010).unwrap();
    // Without gofunc: only the physical frame.
    assert_eq!(t.frames_at(f, 0x1012).len(), 1);
    // Record 0: funcID 0, nameOff 1 ("main.f"), parentPc 0x20 (past the end of all tables),
    // so the loop stops after the tree runs out of pcdata coverage.
    let mut g = vec![0u8; 8];
    g.extend_from_slice(&[0, 0, 0, 0]);
    g.extend_from_slice(&1i32.to_le_bytes());
    g.extend_from_slice(&0x20i32.to_le_bytes());
    g.extend_from_slice(&7i32.to_le_bytes());
    t.set_gofunc(0x5000, g.clone());
    let fr = t.frames_at(f, 0x1012);
    assert_eq!(fr.len(), 2);
    assert!(fr[0].inlined);
    assert_eq!(fr[0].start_line, 7);
    assert_eq!(fr[0].line, 10);
    assert_eq!(fr[1].line, 0); // pc 0x1030 not covered
    // Self-referencing tree: parentPc 0 always maps back to index 0 -> bounded depth.
    g[16..20].copy_from_slice(&0i32.to_le_bytes());
    t.set_gofunc(0x5000, g);
    let fr = t.frames_at(f, 0x1012);
    assert_eq!(fr.len(), MAX_INLINE_DEPTH);
    assert!(!fr.last().unwrap().inlined);
    // Truncated gofunc: record unreadable -> physical frame only.
    t.set_gofunc(0x5000, vec![0; 10]);
    assert_eq!(t.frames_at(f, 0x1012).len(), 1);
    assert_eq!(t.wrapped_entry(f), None);
}

#[test]
fn corrupt_headers() {
    assert_eq!(Pclntab::parse(vec![]).unwrap_err(), PclntabError::Truncated);
    assert_eq!(
        Pclntab::parse(vec![0xf1, 0xff]).unwrap_err(),
        PclntabError::Truncated
    );
    let mut d = build();
    d[0] = 0xfb;
    assert_eq!(
        Pclntab::parse(d).unwrap_err(),
        PclntabError::UnsupportedVersion
    );
    let mut d = build();
    d[0] = 0x12;
    assert!(matches!(Pclntab::parse(d), Err(PclntabError::BadMagic(_))));
    let d = build();
    for n in 0..HDR {
        assert!(Pclntab::parse(d[..n].to_vec()).is_err(), "len {n}");
    }
    let mut d = build();
    d[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(Pclntab::parse(d), Err(PclntabError::BadHeader(_))));
    let mut d = build();
    d[8..16].copy_from_slice(&1_000_000u64.to_le_bytes());
    assert!(matches!(Pclntab::parse(d), Err(PclntabError::BadHeader(_))));
    let mut d = build();
    d[64..72].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(Pclntab::parse(d), Err(PclntabError::BadHeader(_))));
    let mut d = build();
    d[7] = 3;
    assert!(matches!(Pclntab::parse(d), Err(PclntabError::BadHeader(_))));
    let mut d = build();
    d[4] = 1;
    assert!(matches!(Pclntab::parse(d), Err(PclntabError::BadHeader(_))));
}

#[test]
fn corrupt_records_never_panic() {
    let good = build();
    let fnc_off = good.len() - 44;
    // Out-of-range funcoff.
    let mut d = good.clone();
    let ft = fnc_off - 16;
    d[ft + 4..ft + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let t = Pclntab::parse(d).unwrap();
    assert!(t.func_for_pc(0x1010).is_none());
    assert_eq!(t.funcs().count(), 0);
    assert!(t.func_by_name("main.f").is_none());
    // Every field of the _func set to garbage, and the record truncated.
    for fill in [0xffu8, 0x80, 0x7f] {
        for i in 0..44 {
            let mut d = good.clone();
            d[fnc_off + i] = fill;
            d[fnc_off + (i + 1) % 44] = fill;
            d[fnc_off + (i + 3) % 44] = fill;
            exercise(d);
        }
    }
    for cut in 1..44 {
        exercise(good[..good.len() - cut].to_vec());
    }
    // Varint tables that never terminate: pctab full of continuation bytes.
    let mut d = good.clone();
    let pct = u64::from_le_bytes(d[56..64].try_into().unwrap()) as usize;
    for b in &mut d[pct..pct + 14] {
        *b = 0x80;
    }
    exercise(d);
}

fn exercise(d: Vec<u8>) {
    let Ok(mut t) = Pclntab::parse(d) else { return };
    t.set_gofunc(0, vec![0xff; 64]);
    for f in t.funcs().collect::<Vec<_>>() {
        for pc in [0u64, 0x1010, 0x1011, 0x1020, 0x102f, 0x1030, u64::MAX] {
            let _ = t.pcsp(f, pc);
            let _ = t.file_line(f, pc);
            for tab in 0..5 {
                let _ = t.pcdata(f, tab, pc);
            }
            let _ = t.frames_at(f, pc);
        }
        for i in 0..=255u8 {
            let _ = t.funcdata_offset(f, i);
        }
        let _ = (t.name(f), t.args(f), t.flag(f), t.func_id(f), t.end(f));
        let _ = t.wrapped_entry(f);
        let _ = t.func_by_name(t.name(f));
    }
    for pc in [0u64, 0x1010, 0x1030, u64::MAX] {
        let _ = t.func_for_pc(pc);
    }
}

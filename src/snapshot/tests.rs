use super::*;

/// Whole UTF-8 labels are JSON strings, as in every file written before; other bytes and
/// labels read in part are objects that give back the same bytes and length.
#[test]
fn label_json_forms() {
    let forms = [
        (LabelStr::from("tenant \u{1b}é"), r#""tenant \u001bé""#),
        (
            LabelStr::new(b"\xff\xfe ok".to_vec(), 0),
            r#"{"hex":"fffe206f6b"}"#,
        ),
        (
            LabelStr::new(b"ab".to_vec(), 1 << 20),
            r#"{"text":"ab","len":1048576}"#,
        ),
        (
            LabelStr::new(b"a\xe2".to_vec(), 9),
            r#"{"hex":"61e2","len":9}"#,
        ),
    ];
    for (l, json) in forms {
        assert_eq!(serde_json::to_string(&l).unwrap(), json);
        assert_eq!(serde_json::from_str::<LabelStr>(json).unwrap(), l);
    }
    let old: Vec<(LabelStr, LabelStr)> = serde_json::from_str(r#"[["k","v"]]"#).unwrap();
    assert_eq!(old, vec![("k".into(), "v".into())]);
    // Unknown fields are skipped; a `len` below the bytes counts as their length.
    let l: LabelStr = serde_json::from_str(r#"{"x":[1],"text":"abc","len":1}"#).unwrap();
    assert_eq!(l, LabelStr::from("abc"));
    for bad in [
        r#"{"hex":"f"}"#,
        r#"{"hex":"+f"}"#,
        r#"{"hex":"zz"}"#,
        r#"{"len":3}"#,
        r#"{"text":"a","hex":"61"}"#,
        "3",
    ] {
        assert!(serde_json::from_str::<LabelStr>(bad).is_err(), "{bad}");
    }
}

/// A snapshot of 100,000 goroutines holds about two million frames: each is five words, its
/// place shared with every frame at the same place, its size in 32 bits, its rare parts
/// behind one pointer.
#[test]
fn a_frame_is_five_words() {
    assert_eq!(std::mem::size_of::<Frame>(), 40);
    let a = Frame::default();
    let mut b = a.clone();
    assert!(
        std::sync::Arc::ptr_eq(&a.site, &b.site),
        "clones share the site"
    );
    b.set_defers(Vec::new());
    b.set_values(Vec::new());
    assert!(b.extra.is_none(), "nothing to hold, no extra");
}

/// Any sp and fp read back as set, those more than 32 bits apart (a corrupt stack, a dump's
/// text) beside the frame's defers; a frame that holds neither holds no extra.
#[test]
fn every_sp_and_fp_is_kept() {
    let ends = [
        0,
        1,
        16,
        0x7fff_ffff,
        0x8000_0000,
        0xc000_0100,
        1 << 63,
        u64::MAX - 8,
        u64::MAX,
    ];
    let defer = PendingDefer {
        function: "sync.(*Mutex).Unlock".into(),
        ..Default::default()
    };
    for sp in ends {
        for fp in ends {
            let mut f = Frame::default();
            f.set_span(sp, fp);
            assert_eq!((f.sp(), f.fp()), (sp, fp));
            f.set_defers(vec![defer.clone()]);
            assert_eq!((f.sp(), f.fp(), f.defers().len()), (sp, fp, 1));
            let near = sp.wrapping_add(0x40);
            f.set_span(sp, near);
            assert_eq!((f.fp(), f.defers().len()), (near, 1));
            f.set_defers(Vec::new());
            assert!(f.extra.is_none(), "{sp:#x} {near:#x}: nothing to hold");
            f.set_span(sp, fp);
            f.set_defers(vec![defer.clone()]);
            f.set_defers(Vec::new());
            assert_eq!(f.fp(), fp);
            f.set_span(sp, near);
            assert_eq!(f, Frame::new(f.site.clone(), f.args.clone(), sp, near));
        }
    }
}

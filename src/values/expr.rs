//! The expressions `print` takes: a variable, `a.b.c`, `s[3]`, `*p`, `(*p).f`, `len(x)`,
//! `cap(x)`, and a typed address `(*main.T)(0xc000123000)`.

pub use super::maps::Key;

/// Longest expression accepted (characters).
pub const MAX_EXPR_LEN: usize = 1024;
/// Deepest nesting of an expression.
pub const MAX_EXPR_DEPTH: usize = 64;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Var(String),
    Field(Box<Expr>, String),
    /// `x[3]`, `m["k"]`.
    Index(Box<Expr>, Key),
    Deref(Box<Expr>),
    Len(Box<Expr>),
    Cap(Box<Expr>),
    /// `(*T)(addr)`: a pointer of type `*T` to `addr`.
    Cast(String, u64),
}

/// Parses an expression.
pub fn parse(s: &str) -> Result<Expr, String> {
    if s.len() > MAX_EXPR_LEN {
        return Err(format!("expression longer than {MAX_EXPR_LEN} characters"));
    }
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
        depth: 0,
    };
    let e = p.unary()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected {:?} at column {}", &s[p.i..], p.i + 1));
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected {:?} at column {}", c as char, self.i + 1))
        }
    }

    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return Err("expression nested too deeply".into());
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.deeper()?;
        let e = if self.eat(b'*') {
            Expr::Deref(Box::new(self.unary()?))
        } else {
            self.postfix()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            if self.eat(b'.') {
                e = Expr::Field(Box::new(e), self.ident()?);
            } else if self.eat(b'[') {
                let k = self.key()?;
                self.expect(b']')?;
                e = Expr::Index(Box::new(e), k);
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        if self.eat(b'(') {
            // `(*T)(addr)`: a type in parentheses followed by an address in parentheses.
            let save = self.i;
            if self.eat(b'*')
                && let Some(close) = self.s[self.i..].iter().position(|&c| c == b')')
            {
                let ty = String::from_utf8_lossy(&self.s[self.i..self.i + close])
                    .trim()
                    .to_string();
                self.i += close + 1;
                if self.eat(b'(') {
                    let addr = self.number()?;
                    self.expect(b')')?;
                    return Ok(Expr::Cast(ty, addr));
                }
            }
            self.i = save;
            let e = self.unary()?;
            self.expect(b')')?;
            return Ok(e);
        }
        let name = self.ident()?;
        if (name == "len" || name == "cap") && self.eat(b'(') {
            let inner = Box::new(self.unary()?);
            self.expect(b')')?;
            return Ok(if name == "len" {
                Expr::Len(inner)
            } else {
                Expr::Cap(inner)
            });
        }
        Ok(Expr::Var(name))
    }

    fn ident(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c >= 0x80)
        {
            self.i += 1;
        }
        if start == self.i || self.s[start].is_ascii_digit() {
            return Err(format!("expected a name at column {}", start + 1));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// An index or map key: an integer (`-1`, `0x10`) or a string literal (`"k"`, with `\"`
    /// and `\\` escapes).
    fn key(&mut self) -> Result<Key, String> {
        if self.eat(b'"') {
            let mut v = Vec::new();
            loop {
                match self.s.get(self.i) {
                    None => return Err("unterminated string".into()),
                    Some(b'"') => {
                        self.i += 1;
                        return Ok(Key::Str(String::from_utf8_lossy(&v).into_owned()));
                    }
                    Some(b'\\') => {
                        let c = *self.s.get(self.i + 1).ok_or("unterminated string")?;
                        v.push(match c {
                            b'n' => b'\n',
                            b't' => b'\t',
                            c => c,
                        });
                        self.i += 2;
                    }
                    Some(&c) => {
                        v.push(c);
                        self.i += 1;
                    }
                }
            }
        }
        let neg = self.eat(b'-');
        let n = i64::try_from(self.number()?).map_err(|_| "index out of range".to_string())?;
        Ok(Key::Int(if neg { -n } else { n }))
    }

    fn number(&mut self) -> Result<u64, String> {
        self.ws();
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            self.i += 1;
        }
        let t = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(h) => u64::from_str_radix(h, 16),
            None => t.parse(),
        };
        r.map_err(|_| format!("expected a number at column {}", start + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::{Expr, Key, parse};

    fn v(n: &str) -> Box<Expr> {
        Box::new(Expr::Var(n.into()))
    }

    #[test]
    fn parses_what_print_takes() {
        assert_eq!(parse("x").unwrap(), Expr::Var("x".into()));
        assert_eq!(
            parse("r.At.Y").unwrap(),
            Expr::Field(Box::new(Expr::Field(v("r"), "At".into())), "Y".into())
        );
        assert_eq!(
            parse("rooms[1].Name").unwrap(),
            Expr::Field(
                Box::new(Expr::Index(v("rooms"), Key::Int(1))),
                "Name".into()
            )
        );
        assert_eq!(
            parse("(*r).Name").unwrap(),
            Expr::Field(Box::new(Expr::Deref(v("r"))), "Name".into())
        );
        assert_eq!(parse("len(s)").unwrap(), Expr::Len(v("s")));
        assert_eq!(
            parse(r#"m["t\"wo"]"#).unwrap(),
            Expr::Index(v("m"), Key::Str("t\"wo".into()))
        );
        assert_eq!(parse("m[-2]").unwrap(), Expr::Index(v("m"), Key::Int(-2)));
        assert_eq!(parse("cap( s )").unwrap(), Expr::Cap(v("s")));
        assert_eq!(parse("*p").unwrap(), Expr::Deref(v("p")));
        assert_eq!(
            parse("(*main.Room)(0xc000123000)").unwrap(),
            Expr::Cast("main.Room".into(), 0xc000123000)
        );
        assert_eq!(
            parse("(*main.Room)(0x10).Name").unwrap(),
            Expr::Field(Box::new(Expr::Cast("main.Room".into(), 16)), "Name".into())
        );
    }

    #[test]
    fn refuses_the_rest() {
        for bad in [
            "",
            "1x",
            "a.",
            "a[",
            "a[b]",
            "a +",
            "(a",
            "len(",
            &"(".repeat(100),
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

//! A small backtracking regex engine with ECMAScript semantics, for the pre-tokenizer expressions
//! llama.cpp runs through `std::regex` (see `pretokenize.rs` for how code points are presented).
//!
//! Supported: literals and escapes, bracket classes with ranges and negation, `\s \S \d \D \w \W`,
//! `\p{N} \p{L} \p{P} \p{M} \p{S}` (and `\p{Lu}`... which llama.cpp treats as `\p{L}`), groups
//! `( )` `(?: )`, lookahead `(?= )` `(?! )`, greedy `? * + {n} {n,} {n,m}`, alternation, `^ $`.
//! Alternation is ordered and quantifiers are greedy with backtracking, so the first match found
//! is the one ECMAScript (and libstdc++) reports.
//!
//! A third mode, [`Mode::Unicode`], matches real code points with real Unicode properties (see
//! `ucd.rs`): `\p{L}`, `\p{Lu}`... are the Unicode general categories, `\s` is White_Space and
//! `(?i: )` groups fold literal characters with Unicode simple case folding. This is how tiktoken
//! (Rust `fancy-regex`) and HF `tokenizers` (Oniguruma) run their expressions. Constructs whose
//! meaning differs between those engines or that are not implemented (`\d`, `\w`, `^`, `$`,
//! classes inside `(?i: )`) are refused in that mode rather than guessed.
//!
//! Robustness: a quantified single character is matched iteratively, so long runs cost no stack;
//! expressions that would need deep recursion (an unbounded repeat of a multi-character group, a
//! group repeated more than [`MAX_GROUP_REPEAT`] times, nesting deeper than [`MAX_DEPTH`], more
//! than [`MAX_PATTERN_CHARS`] characters — tokenizer.json patterns are untrusted) or can match the
//! empty string are refused when compiled.

use super::pretokenize::Mode;
use super::ucd;

/// Presented code points standing for non-ASCII categories (collapsed mode).
pub(crate) const STAND_IN_NUMBER: u32 = 0xD1;
pub(crate) const STAND_IN_LETTER: u32 = 0xD2;
pub(crate) const STAND_IN_PUNCT: u32 = 0xD3;
pub(crate) const STAND_IN_MARK: u32 = 0xD4;
pub(crate) const STAND_IN_SYMBOL: u32 = 0xD5;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Range(u32, u32),
    Space,
    Digit,
    Word,
    Number,
    Letter,
    Punct,
    Mark,
    Symbol,
    /// Unicode mode: any of these property bits (see `ucd::bit`).
    Prop(u32),
}

impl Atom {
    fn matches(&self, c: u32) -> bool {
        match *self {
            Atom::Range(lo, hi) => {
                let c = c & ucd::CP_MASK;
                lo <= c && c <= hi
            }
            Atom::Prop(bits) => (c >> ucd::SHIFT) & bits != 0,
            Atom::Space => matches!(c, 0x09..=0x0D | 0x20),
            Atom::Digit => (0x30..=0x39).contains(&c),
            Atom::Word => matches!(c, 0x30..=0x39 | 0x41..=0x5A | 0x61..=0x7A | 0x5F),
            Atom::Number => c == STAND_IN_NUMBER || (0x30..=0x39).contains(&c),
            Atom::Letter => c == STAND_IN_LETTER || matches!(c, 0x41..=0x5A | 0x61..=0x7A),
            // ! " # % & ' ( ) * , - . / : ; ? @ [ \ ] _ { }
            Atom::Punct => {
                c == STAND_IN_PUNCT
                    || matches!(c, 0x21..=0x23 | 0x25..=0x2A | 0x2C..=0x2F | 0x3A..=0x3B | 0x3F..=0x40 | 0x5B..=0x5D)
                    || matches!(c, 0x5F | 0x7B | 0x7D)
            }
            Atom::Mark => c == STAND_IN_MARK,
            // $ + < = > ^ ` | ~
            Atom::Symbol => c == STAND_IN_SYMBOL || matches!(c, 0x24 | 0x2B | 0x3C..=0x3E | 0x5E | 0x60 | 0x7C | 0x7E),
        }
    }
}

/// A predicate on one presented code point.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pred {
    /// Any of the atoms (or none of them, when negated).
    Set {
        atoms: Vec<(Atom, bool)>,
        negated: bool,
    },
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
}

impl Pred {
    fn matches(&self, c: u32) -> bool {
        match self {
            // Each atom may itself be a negated escape (\S inside a class).
            Pred::Set { atoms, negated } => atoms.iter().any(|(a, neg)| a.matches(c) != *neg) != *negated,
            Pred::And(ps) => ps.iter().all(|p| p.matches(c)),
            Pred::Or(ps) => ps.iter().any(|p| p.matches(c)),
            Pred::Not(p) => !p.matches(c),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Char(Pred),
    Seq(Vec<Node>),
    Alt(Vec<Node>),
    Repeat { node: Box<Node>, min: u32, max: u32 },
    Look { node: Box<Node>, negate: bool },
    Begin,
    End,
}

const INF: u32 = u32::MAX;
/// Longest expression accepted (the matcher recurses once per sequence item).
pub(crate) const MAX_PATTERN_CHARS: usize = 2048;
/// Deepest group nesting accepted.
pub(crate) const MAX_DEPTH: u32 = 32;
/// Most repetitions of a multi-character group (each costs a level of recursion).
pub(crate) const MAX_GROUP_REPEAT: u32 = 64;

/// A compiled expression and the presentation it matches against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Regex {
    root: Node,
    mode: Mode,
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    src: &'a str,
    /// Full-Unicode semantics (see the module docs).
    unicode: bool,
    /// Inside a `(?i: )` group (Unicode mode only).
    fold: bool,
    /// Groups open at this point.
    depth: u32,
}

type PResult<T> = std::result::Result<T, String>;

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }
    fn bump(&mut self) -> PResult<char> {
        let c = self.peek().ok_or_else(|| format!("unexpected end of {:?}", self.src))?;
        self.pos += 1;
        Ok(c)
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn alt(&mut self) -> PResult<Node> {
        let mut alts = vec![self.seq()?];
        while self.eat('|') {
            alts.push(self.seq()?);
        }
        Ok(if alts.len() == 1 { alts.pop().unwrap_or(Node::Seq(Vec::new())) } else { Node::Alt(alts) })
    }

    fn seq(&mut self) -> PResult<Node> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        Ok(Node::Seq(items))
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect::<String>().parse().ok()
    }

    fn quantified(&mut self, node: Node) -> PResult<Node> {
        let (min, max) = match self.peek() {
            Some('?') => (0, 1),
            Some('*') => (0, INF),
            Some('+') => (1, INF),
            Some('{') => {
                let save = self.pos;
                self.pos += 1;
                let Some(min) = self.number() else {
                    // Not a quantifier: a literal brace.
                    self.pos = save;
                    return Ok(node);
                };
                let max = if self.eat(',') { self.number().unwrap_or(INF) } else { min };
                if !self.eat('}') {
                    return Err(format!("bad quantifier in {:?}", self.src));
                }
                self.pos -= 1;
                (min, max)
            }
            _ => return Ok(node),
        };
        self.pos += 1;
        if matches!(self.peek(), Some('?') | Some('+')) {
            return Err(format!("lazy or possessive quantifier in {:?}", self.src));
        }
        Ok(Node::Repeat { node: Box::new(node), min, max })
    }

    fn atom(&mut self) -> PResult<Node> {
        match self.bump()? {
            '(' => {
                if self.depth >= MAX_DEPTH {
                    return Err(format!("groups nested deeper than {MAX_DEPTH} in {:?}", self.src));
                }
                self.depth += 1;
                let node = if self.eat('?') {
                    match self.bump()? {
                        ':' => self.alt()?,
                        'i' if self.unicode && self.peek() == Some(':') => {
                            self.pos += 1;
                            let outer = self.fold;
                            self.fold = true;
                            let node = self.alt();
                            self.fold = outer;
                            node?
                        }
                        '=' => Node::Look { node: Box::new(self.alt()?), negate: false },
                        '!' => Node::Look { node: Box::new(self.alt()?), negate: true },
                        c => return Err(format!("unsupported group (?{c} in {:?}", self.src)),
                    }
                } else {
                    self.alt()?
                };
                if !self.eat(')') {
                    return Err(format!("missing ) in {:?}", self.src));
                }
                self.depth -= 1;
                Ok(node)
            }
            '[' if self.fold => Err(format!("class inside (?i: ) in {:?}", self.src)),
            '[' => self.class(),
            '\\' => {
                let (atom, negated) = self.escape()?;
                if let (true, Atom::Range(lo, hi), false) = (self.fold, &atom, negated) {
                    if lo == hi {
                        return Ok(self.folded(*lo));
                    }
                }
                Ok(Node::Char(Pred::Set { atoms: vec![(atom, negated)], negated: false }))
            }
            '^' | '$' if self.unicode => Err(format!("anchors ^ $ (line or text?) in {:?}", self.src)),
            '^' => Ok(Node::Begin),
            '$' => Ok(Node::End),
            '.' if self.unicode => {
                Ok(Node::Char(Pred::Set { atoms: vec![(Atom::Range(0x0A, 0x0A), false)], negated: true }))
            }
            '.' => Ok(Node::Char(Pred::Set {
                atoms: vec![
                    (Atom::Range(0x0A, 0x0A), false),
                    (Atom::Range(0x0D, 0x0D), false),
                    (Atom::Range(0x2028, 0x2029), false),
                ],
                negated: true,
            })),
            c if self.fold => Ok(self.folded(c as u32)),
            c => Ok(Node::Char(Pred::Set { atoms: vec![(Atom::Range(c as u32, c as u32), false)], negated: false })),
        }
    }

    /// A literal under `(?i: )`: the code points equal to it under simple case folding.
    fn folded(&self, cp: u32) -> Node {
        let ranges = char::from_u32(cp).map(ucd::fold_class).unwrap_or_else(|| vec![(cp, cp)]);
        Node::Char(Pred::Set {
            atoms: ranges.into_iter().map(|(lo, hi)| (Atom::Range(lo, hi), false)).collect(),
            negated: false,
        })
    }

    /// After a backslash: the atom and whether it is negated (\S \D \W).
    fn escape(&mut self) -> PResult<(Atom, bool)> {
        let c = self.bump()?;
        let lit = |c: char| Atom::Range(c as u32, c as u32);
        if self.unicode {
            match c {
                's' => return Ok((Atom::Prop(ucd::bit::WS), false)),
                'S' => return Ok((Atom::Prop(ucd::bit::WS), true)),
                'd' | 'D' | 'w' | 'W' => return Err(format!("\\{c} (ASCII or Unicode?) in {:?}", self.src)),
                _ => {}
            }
        }
        Ok(match c {
            's' => (Atom::Space, false),
            'S' => (Atom::Space, true),
            'd' => (Atom::Digit, false),
            'D' => (Atom::Digit, true),
            'w' => (Atom::Word, false),
            'W' => (Atom::Word, true),
            'r' => (lit('\r'), false),
            'n' => (lit('\n'), false),
            't' => (lit('\t'), false),
            'f' => (lit('\x0C'), false),
            'v' => (lit('\x0B'), false),
            'p' => {
                if !self.eat('{') {
                    return Err(format!("bad \\p in {:?}", self.src));
                }
                let mut name = String::new();
                loop {
                    match self.bump()? {
                        '}' => break,
                        c => name.push(c),
                    }
                }
                if self.unicode {
                    use ucd::bit;
                    let bits = match name.as_str() {
                        "L" => bit::L,
                        "Lu" => bit::LU,
                        "Ll" => bit::LL,
                        "Lt" => bit::LT,
                        "Lm" => bit::LM,
                        "Lo" => bit::LO,
                        "M" => bit::M,
                        "N" => bit::N,
                        "P" => bit::P,
                        "S" => bit::S,
                        _ => return Err(format!("unsupported \\p{{{name}}} in {:?}", self.src)),
                    };
                    return Ok((Atom::Prop(bits), false));
                }
                let atom = match name.as_str() {
                    "N" => Atom::Number,
                    "L" | "Lu" | "Ll" | "Lt" | "Lm" | "Lo" => Atom::Letter,
                    "P" => Atom::Punct,
                    "M" => Atom::Mark,
                    "S" => Atom::Symbol,
                    _ => return Err(format!("unsupported \\p{{{name}}} in {:?}", self.src)),
                };
                (atom, false)
            }
            'b' | 'B' => return Err(format!("unsupported \\{c} in {:?}", self.src)),
            c if c.is_ascii_alphanumeric() => return Err(format!("unsupported escape \\{c} in {:?}", self.src)),
            c => (lit(c), false),
        })
    }

    fn class(&mut self) -> PResult<Node> {
        let negated = self.eat('^');
        let mut atoms = Vec::new();
        let mut first = true;
        loop {
            let c = self.bump()?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let (lo, neg) = if c == '\\' { self.escape()? } else { (Atom::Range(c as u32, c as u32), false) };
            // A range `a-b` (a '-' before ']' is literal).
            if let Atom::Range(lo_cp, _) = lo {
                if !neg && self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']') {
                    self.pos += 1;
                    let h = self.bump()?;
                    let hi = if h == '\\' {
                        match self.escape()? {
                            (Atom::Range(h, _), false) => h,
                            _ => return Err(format!("bad range in {:?}", self.src)),
                        }
                    } else {
                        h as u32
                    };
                    atoms.push((Atom::Range(lo_cp, hi), false));
                    continue;
                }
            }
            atoms.push((lo, neg));
        }
        Ok(Node::Char(Pred::Set { atoms, negated }))
    }
}

/// Fold `(?=X)Y` and `(?!X)Y` over single characters into one character predicate, and
/// alternations of single characters into one predicate.
fn simplify(node: Node) -> Node {
    match node {
        Node::Seq(items) => {
            let items: Vec<Node> = items.into_iter().map(simplify).collect();
            let mut out: Vec<Node> = Vec::with_capacity(items.len());
            for item in items {
                if let (Node::Char(p), Some(Node::Look { node, negate })) = (&item, out.last()) {
                    if let Node::Char(look) = &**node {
                        let look = if *negate { Pred::Not(Box::new(look.clone())) } else { look.clone() };
                        let merged = Node::Char(Pred::And(vec![look, p.clone()]));
                        out.pop();
                        out.push(merged);
                        continue;
                    }
                }
                out.push(item);
            }
            if out.len() == 1 {
                out.pop().unwrap_or(Node::Seq(Vec::new()))
            } else {
                Node::Seq(out)
            }
        }
        Node::Alt(alts) => {
            let alts: Vec<Node> = alts.into_iter().map(simplify).collect();
            if alts.iter().all(|a| matches!(a, Node::Char(_))) {
                let preds =
                    alts.into_iter().filter_map(|a| if let Node::Char(p) = a { Some(p) } else { None }).collect();
                Node::Char(Pred::Or(preds))
            } else {
                Node::Alt(alts)
            }
        }
        Node::Repeat { node, min, max } => Node::Repeat { node: Box::new(simplify(*node)), min, max },
        Node::Look { node, negate } => Node::Look { node: Box::new(simplify(*node)), negate },
        other => other,
    }
}

/// Can `node` match the empty string?
fn nullable(node: &Node) -> bool {
    match node {
        Node::Char(_) => false,
        Node::Seq(items) => items.iter().all(nullable),
        Node::Alt(alts) => alts.iter().any(nullable),
        Node::Repeat { node, min, .. } => *min == 0 || nullable(node),
        Node::Look { .. } | Node::Begin | Node::End => true,
    }
}

/// Refuse unbounded repeats of anything but a single character (recursion depth).
fn check_repeats(node: &Node) -> PResult<()> {
    match node {
        Node::Repeat { node: inner, max, .. } => {
            if !matches!(**inner, Node::Char(_)) && *max == INF {
                return Err("unbounded repeat of a multi-character group".into());
            }
            if !matches!(**inner, Node::Char(_)) && *max > MAX_GROUP_REPEAT {
                return Err(format!("a group repeated up to {max} times (limit {MAX_GROUP_REPEAT})"));
            }
            check_repeats(inner)
        }
        Node::Seq(items) | Node::Alt(items) => items.iter().try_for_each(check_repeats),
        Node::Look { node, .. } => check_repeats(node),
        _ => Ok(()),
    }
}

impl Regex {
    /// Compile one of llama.cpp's pre-tokenizer expressions. Expressions with a Unicode category
    /// run on the collapsed presentation, others on the wide one (as in llama.cpp).
    pub fn new(src: &str) -> PResult<Regex> {
        let collapsed =
            ["\\p{N}", "\\p{L}", "\\p{P}", "\\p{M}", "\\p{S}", "\\p{Lu}", "\\p{Ll}", "\\p{Lt}", "\\p{Lm}", "\\p{Lo}"]
                .iter()
                .any(|cat| src.contains(cat));
        if collapsed && !src.is_ascii() {
            return Err(format!("categories and non-ASCII characters together in {src:?}"));
        }
        Self::compile(src, if collapsed { Mode::Collapsed } else { Mode::Wide })
    }

    /// Compile an expression with full-Unicode semantics ([`Mode::Unicode`]): tiktoken's and HF
    /// `tokenizers`' expressions.
    pub fn unicode(src: &str) -> PResult<Regex> {
        Self::compile(src, Mode::Unicode)
    }

    fn compile(src: &str, mode: Mode) -> PResult<Regex> {
        let unicode = mode == Mode::Unicode;
        if src.chars().count() > MAX_PATTERN_CHARS {
            return Err(format!("expression of {} characters (limit {MAX_PATTERN_CHARS})", src.chars().count()));
        }
        let mut p = Parser { chars: src.chars().collect(), pos: 0, src, unicode, fold: false, depth: 0 };
        let root = p.alt()?;
        if p.pos != p.chars.len() {
            return Err(format!("unbalanced ) in {src:?}"));
        }
        let root = simplify(root);
        check_repeats(&root)?;
        if nullable(&root) {
            return Err(format!("{src:?} can match the empty string"));
        }
        Ok(Regex { root, mode })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The leftmost match in `text[from..end]` (code points presented for [`Regex::mode`]), as
    /// `(start, end)`; `begin` is where the piece starts (for `^`).
    pub fn find(&self, text: &[u32], begin: usize, from: usize, end: usize) -> Option<(usize, usize)> {
        let m = Matcher { text, begin, end };
        for start in from..end {
            let mut found = None;
            if m.node(&self.root, start, &mut |e| {
                found = Some(e);
                true
            }) {
                return found.map(|e| (start, e));
            }
        }
        None
    }
}

struct Matcher<'a> {
    text: &'a [u32],
    begin: usize,
    end: usize,
}

impl Matcher<'_> {
    #[inline]
    fn char_at(&self, pos: usize, p: &Pred) -> bool {
        pos < self.end && self.text.get(pos).is_some_and(|&c| p.matches(c))
    }

    fn node(&self, node: &Node, pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        match node {
            Node::Char(p) => self.char_at(pos, p) && k(pos + 1),
            Node::Seq(items) => self.seq(items, pos, k),
            Node::Alt(alts) => alts.iter().any(|a| self.node(a, pos, k)),
            Node::Repeat { node, min, max } => self.repeat(node, *min, *max, pos, false, k),
            Node::Look { node, negate } => {
                let found = self.node(node, pos, &mut |_| true);
                found != *negate && k(pos)
            }
            Node::Begin => pos == self.begin && k(pos),
            Node::End => pos == self.end && k(pos),
        }
    }

    fn seq(&self, items: &[Node], pos: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
        match items.split_first() {
            None => k(pos),
            Some((first, rest)) => {
                // `C+$`: only the longest run can reach the end.
                if let (Node::Repeat { node, min, max }, Some(Node::End)) = (first, rest.first()) {
                    if matches!(**node, Node::Char(_)) {
                        return self.repeat(node, *min, *max, pos, true, &mut |p| self.seq(rest, p, k));
                    }
                }
                self.node(first, pos, &mut |p| self.seq(rest, p, k))
            }
        }
    }

    fn repeat(
        &self,
        node: &Node,
        min: u32,
        max: u32,
        pos: usize,
        longest_only: bool,
        k: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        if let Node::Char(p) = node {
            let mut n = 0usize;
            while (n as u64) < max as u64 && self.char_at(pos + n, p) {
                n += 1;
            }
            if n < min as usize {
                return false;
            }
            if longest_only {
                return k(pos + n);
            }
            return (min as usize..=n).rev().any(|i| k(pos + i));
        }
        self.repeat_group(node, min, max, 0, pos, k)
    }

    fn repeat_group(
        &self,
        node: &Node,
        min: u32,
        max: u32,
        count: u32,
        pos: usize,
        k: &mut dyn FnMut(usize) -> bool,
    ) -> bool {
        if count < max
            && self.node(node, pos, &mut |p| {
                // An iteration that matched nothing ends the loop (ECMAScript).
                if p == pos && count >= min {
                    return false;
                }
                self.repeat_group(node, min, max, count + 1, p, k)
            })
        {
            return true;
        }
        count >= min && k(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find_all(re: &str, text: &str) -> Vec<String> {
        let r = Regex::new(re).unwrap();
        let cps: Vec<u32> = text.chars().map(|c| c as u32).collect();
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some((s, e)) = r.find(&cps, 0, pos, cps.len()) {
            out.push(text.chars().skip(s).take(e - s).collect());
            pos = e;
        }
        out
    }

    #[test]
    fn ecmascript_semantics() {
        assert_eq!(find_all("\\s+(?!\\S)|\\s+", "a   b  "), vec!["  ", " ", "  "]);
        assert_eq!(find_all("[0-9]{1,3}", "12345"), vec!["123", "45"]);
        assert_eq!(find_all("\\s+$", "a  b  "), vec!["  "]);
        assert_eq!(find_all("'s|'t| ?[a-z]+", "it's ok"), vec!["it", "'s", " ok"]);
        let camel = "((?=[A-Za-z])([^a-z]))*((?=[A-Za-z])([^A-Z]))+";
        assert_eq!(find_all(camel, "HTMLParser fooBarBAZ"), vec!["HTMLParser", "foo", "Bar"]);
        assert_eq!(find_all("(IMGIMG)((A|B|C){1,4})Z", "xIMGIMGABZ"), vec!["IMGIMGABZ"]);
        assert_eq!(find_all("[\\[\\]\\-]+", "a[-]b"), vec!["[-]"]);
        assert!(Regex::new("(?=x)").is_err());
        assert!(Regex::new("(?:ab)+").is_err());
        assert!(Regex::new("\\p{Han}+").is_err());
        assert!(Regex::new(&"(".repeat(10_000)).is_err());
        assert!(Regex::new(&format!("{}a{}", "(".repeat(40), ")".repeat(40))).is_err());
        assert!(Regex::new(&"a".repeat(5000)).is_err());
        assert!(Regex::new("(ab){1,100000}").is_err());
        assert!(Regex::new("(ab){1,4}").is_ok());
    }

    #[test]
    fn unicode_mode() {
        let find_all = |re: &str, text: &str| -> Vec<String> {
            let r = Regex::unicode(re).unwrap();
            let cps: Vec<u32> = text.chars().map(|c| ucd::pack(c as u32)).collect();
            let mut out = Vec::new();
            let mut pos = 0;
            while let Some((s, e)) = r.find(&cps, 0, pos, cps.len()) {
                out.push(text.chars().skip(s).take(e - s).collect());
                pos = e;
            }
            out
        };
        let o200k = super::super::tiktoken::O200K_PATTERN;
        assert_eq!(find_all(o200k, "HTTPServer's ÉCOLE élève"), vec!["HTTPServer's", " ÉCOLE", " élève"]);
        assert_eq!(find_all(o200k, "x'ſ 12345  \n"), vec!["x'ſ", " ", "123", "45", "  \n"]);
        assert_eq!(find_all("\\p{Lu}+", "aÀBcǅ"), vec!["ÀB"]);
        assert!(Regex::unicode("\\d+").is_err());
        assert!(Regex::unicode("^a").is_err());
        assert!(Regex::unicode("(?i:[a-z])").is_err());
    }
}

//! Mount-name globs: `fnmatch(3)` with `FNM_PATHNAME`, as icecast matches `<mount-name>`.
//!
//! Supported syntax:
//! * `*` matches any run of characters except `/` (possibly empty);
//! * `?` matches one character except `/`;
//! * `[...]` matches one character (never `/`) from a set of characters, ranges (`a-z`) and
//!   POSIX classes (`[:digit:]`); `[!...]` or `[^...]` negates the set; `]` first in the set
//!   and `-` first or last are literal;
//! * `\c` matches `c` literally (inside and outside sets);
//! * anything else matches itself, case-sensitively. An unterminated `[` is a literal `[`,
//!   a trailing `\` a literal backslash (glibc behaves the same).
//!
//! Matching is a dynamic program over (pattern token, name position), so its cost is bounded
//! by `pattern length × name length` whatever the pattern: no exponential backtracking.

/// Does `name` match the glob `pattern` (fnmatch with `FNM_PATHNAME`)?
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?', '[', '\\']) {
        return pattern == name;
    }
    let tokens = tokenize(pattern);
    let name: Vec<char> = name.chars().collect();
    let n = name.len();

    // `next[j]`: do tokens[i + 1..] match name[j..]? Start with the empty pattern suffix.
    let mut next: Vec<bool> = (0..=n).map(|j| j == n).collect();
    let mut cur = vec![false; n + 1];
    for tok in tokens.iter().rev() {
        // Iterate j downwards so a star can consult cur[j + 1] (one more character eaten).
        for j in (0..=n).rev() {
            let c = name.get(j).copied();
            cur[j] = match tok {
                Token::Star => next[j] || (c.is_some_and(|c| c != '/') && cur[j + 1]),
                Token::Literal(l) => c == Some(*l) && next[j + 1],
                Token::One => c.is_some_and(|c| c != '/') && next[j + 1],
                Token::Set(set) => c.is_some_and(|c| c != '/' && set.matches(c)) && next[j + 1],
            };
        }
        std::mem::swap(&mut next, &mut cur);
    }
    next[0]
}

/// How specific a mount pattern is, to order the `[[mount]]` sections that all match one
/// mount: greater is more specific. An exact name beats every glob; between globs, the longer
/// literal start (the text before the first wildcard) wins, then the one with more literal
/// characters in all. Equal patterns tie (the caller keeps file order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    exact: bool,
    literal_prefix: usize,
    literals: usize,
}

/// The [`Specificity`] of a `[[mount]]` name or glob.
pub fn specificity(pattern: &str) -> Specificity {
    let tokens = tokenize(pattern);
    let is_literal = |t: &Token| matches!(t, Token::Literal(_));
    Specificity {
        exact: tokens.iter().all(is_literal),
        literal_prefix: tokens.iter().take_while(|t| is_literal(t)).count(),
        literals: tokens.iter().filter(|t| is_literal(t)).count(),
    }
}

#[derive(Debug, Clone)]
enum Token {
    Literal(char),
    One,
    Star,
    Set(Set),
}

#[derive(Debug, Clone)]
struct Set {
    negated: bool,
    items: Vec<SetItem>,
}

#[derive(Debug, Clone)]
enum SetItem {
    Char(char),
    Range(char, char),
    Class(CharClass),
}

/// A POSIX character class such as `[:digit:]`.
type CharClass = fn(char) -> bool;

impl Set {
    fn matches(&self, c: char) -> bool {
        let hit = self.items.iter().any(|item| match *item {
            SetItem::Char(x) => x == c,
            SetItem::Range(lo, hi) => lo <= c && c <= hi,
            SetItem::Class(f) => f(c),
        });
        hit != self.negated
    }
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if !matches!(tokens.last(), Some(Token::Star)) {
                    tokens.push(Token::Star);
                }
                i += 1;
            }
            '?' => {
                tokens.push(Token::One);
                i += 1;
            }
            '\\' => {
                // A trailing backslash stands for itself.
                let c = chars.get(i + 1).copied().unwrap_or('\\');
                tokens.push(Token::Literal(c));
                i += 2;
            }
            '[' => match parse_set(&chars, i + 1) {
                Some((set, end)) => {
                    tokens.push(Token::Set(set));
                    i = end;
                }
                None => {
                    tokens.push(Token::Literal('['));
                    i += 1;
                }
            },
            c => {
                tokens.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    tokens
}

/// Parses a set whose body starts at `chars[start]` (just after `[`). Returns the set and the
/// index just after its closing `]`, or `None` when the set is unterminated.
fn parse_set(chars: &[char], start: usize) -> Option<(Set, usize)> {
    let mut i = start;
    let negated = matches!(chars.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Set { negated, items }, i + 1));
        }
        first = false;
        if c == '[' && chars.get(i + 1) == Some(&':') {
            if let Some((class, end)) = parse_class(chars, i + 2) {
                items.push(SetItem::Class(class));
                i = end;
                continue;
            }
        }
        let (lo, after_lo) = set_char(chars, i)?;
        // A range needs a `-` that is followed by something other than the closing `]`.
        if chars.get(after_lo) == Some(&'-') && chars.get(after_lo + 1).is_some_and(|&c| c != ']') {
            let (hi, after_hi) = set_char(chars, after_lo + 1)?;
            items.push(SetItem::Range(lo, hi));
            i = after_hi;
        } else {
            items.push(SetItem::Char(lo));
            i = after_lo;
        }
    }
}

/// One (possibly backslash-escaped) character of a set: the character and the next index.
fn set_char(chars: &[char], i: usize) -> Option<(char, usize)> {
    match *chars.get(i)? {
        '\\' => Some((*chars.get(i + 1)?, i + 2)),
        c => Some((c, i + 1)),
    }
}

/// `[:name:]` inside a set, with `start` just after `[:`.
fn parse_class(chars: &[char], start: usize) -> Option<(CharClass, usize)> {
    let len = chars[start..].windows(2).position(|w| w == [':', ']'])?;
    let name: String = chars[start..start + len].iter().collect();
    let f: CharClass = match name.as_str() {
        "alnum" => |c| c.is_alphanumeric(),
        "alpha" => |c| c.is_alphabetic(),
        "blank" => |c| c == ' ' || c == '\t',
        "cntrl" => |c| c.is_control(),
        "digit" => |c| c.is_ascii_digit(),
        "graph" => |c| !c.is_control() && !c.is_whitespace(),
        "lower" => |c| c.is_lowercase(),
        "print" => |c| !c.is_control(),
        "punct" => |c| c.is_ascii_punctuation(),
        "space" => |c| c.is_whitespace(),
        "upper" => |c| c.is_uppercase(),
        "xdigit" => |c| c.is_ascii_hexdigit(),
        _ => return None,
    };
    Some((f, start + len + 2))
}

#[cfg(test)]
mod tests {
    use super::{glob_match, specificity};

    #[test]
    fn specificity_orders_exact_then_prefix_then_literals() {
        let order = [
            "/live/special.mp3",
            "/live/special\\*",
            "/live/spec*.mp3",
            "/live/*.mp3",
            "/live/*",
            "/l*/*.mp3",
            "/*",
        ];
        for pair in order.windows(2) {
            assert!(
                specificity(pair[0]) > specificity(pair[1]),
                "{} should be more specific than {}",
                pair[0],
                pair[1]
            );
        }
        // An escaped wildcard is a literal character, so the name is exact.
        assert!(specificity("/a\\*") > specificity("/a*"));
        assert_eq!(specificity("/radio?"), specificity("/radio[0-9]"));
    }

    #[test]
    fn literal() {
        assert!(glob_match("/stream", "/stream"));
        assert!(!glob_match("/stream", "/stream2"));
        assert!(!glob_match("/stream", "/Stream"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "/"));
    }

    #[test]
    fn star_does_not_cross_slash() {
        assert!(glob_match("/live/*", "/live/a"));
        assert!(glob_match("/live/*", "/live/"));
        assert!(!glob_match("/live/*", "/live/a/b"));
        assert!(!glob_match("/live/*", "/live"));
        assert!(!glob_match("/live/*", "/other/a"));
        assert!(glob_match("/*", "/stream.mp3"));
        assert!(!glob_match("*", "/stream"));
        assert!(glob_match("/*/*", "/a/b"));
        assert!(!glob_match("/*/*", "/a"));
        assert!(glob_match("/*.mp3", "/x.mp3"));
        assert!(glob_match("/*.mp3", "/.mp3"));
        assert!(!glob_match("/*.mp3", "/x.ogg"));
        assert!(glob_match("/a*b*c", "/aXbYbZc"));
        assert!(!glob_match("/a*b*c", "/aXb/c"));
        assert!(glob_match("/**", "/abc"));
    }

    #[test]
    fn question_mark() {
        assert!(glob_match("/radio?", "/radio1"));
        assert!(!glob_match("/radio?", "/radio"));
        assert!(!glob_match("/radio?", "/radio12"));
        assert!(!glob_match("/a?b", "/a/b"));
        assert!(glob_match("/ä?", "/äö"));
    }

    #[test]
    fn sets() {
        assert!(glob_match("/radio[0-9]", "/radio5"));
        assert!(!glob_match("/radio[0-9]", "/radioa"));
        assert!(glob_match("/radio[!0-9]", "/radioa"));
        assert!(glob_match("/radio[^0-9]", "/radioa"));
        assert!(!glob_match("/radio[^0-9]", "/radio7"));
        assert!(glob_match("/[abc]", "/b"));
        assert!(!glob_match("/[abc]", "/d"));
        assert!(glob_match("/[]x]", "/]"));
        assert!(glob_match("/[!]x]", "/a"));
        assert!(!glob_match("/[!]x]", "/]"));
        assert!(glob_match("/[a-]", "/-"));
        assert!(glob_match("/[-a]", "/-"));
        assert!(glob_match("/[\\]]", "/]"));
        assert!(glob_match("/[[:digit:]x]", "/7"));
        assert!(glob_match("/[[:digit:]x]", "/x"));
        assert!(!glob_match("/[[:digit:]x]", "/y"));
        // Sets never match '/', not even negated ones.
        assert!(!glob_match("/a[!x]b", "/a/b"));
        assert!(!glob_match("/a[/]b", "/a/b"));
    }

    #[test]
    fn unterminated_set_is_literal() {
        assert!(glob_match("/[abc", "/[abc"));
        assert!(!glob_match("/[abc", "/a"));
        assert!(glob_match("/[", "/["));
    }

    #[test]
    fn escapes() {
        assert!(glob_match("/a\\*", "/a*"));
        assert!(!glob_match("/a\\*", "/ab"));
        assert!(glob_match("/a\\?", "/a?"));
        assert!(!glob_match("/a\\?", "/ab"));
        assert!(glob_match("/\\[x]", "/[x]"));
        assert!(glob_match("/x\\", "/x\\"));
    }

    #[test]
    fn no_exponential_blowup() {
        let pattern = format!("/{}b", "*a".repeat(50));
        let name = format!("/{}", "a".repeat(5000));
        assert!(!glob_match(&pattern, &name));
        let name_ok = format!("/{}b", "a".repeat(5000));
        assert!(glob_match(&pattern, &name_ok));
    }
}

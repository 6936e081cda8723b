//! Java `.properties` syntax, as `java.util.Properties.load` reads it:
//! `#`/`!` comment lines, `=`, `:` or whitespace between key and value,
//! backslash line continuations and escapes (`\t`, `\n`, `\uXXXX`, `\=`, …).
//!
//! One deliberate difference: a line holding a key and no separator at all
//! (Java reads it as the key with an empty value) is refused, because in a
//! MirrorMaker 2 file it is almost always a typo that would silently drop a
//! setting.

/// One `key=value` entry with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, unescaped.
    pub key: String,
    /// The value, unescaped, continuations joined.
    pub value: String,
    /// The 1-based line the entry starts on.
    pub line: usize,
}

/// A line the parser cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The 1-based line.
    pub line: usize,
    /// The key as far as it could be read (may be empty).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Parses the whole text into entries, in file order (duplicates kept).
pub fn parse(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let mut entries = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, first)) = lines.next() {
        let line_no = index + 1;
        let trimmed = first.trim_start_matches([' ', '\t', '\x0c']);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // A logical line: physical lines joined while one ends in an odd
        // number of backslashes; each continuation loses its leading blanks.
        let mut logical = String::from(trimmed);
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start_matches([' ', '\t', '\x0c'])),
                None => break,
            }
        }
        entries.push(split_entry(&logical, line_no)?);
    }
    Ok(entries)
}

fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Splits a logical line at the first unescaped `=`, `:` or blank, then
/// unescapes both sides.
fn split_entry(line: &str, line_no: usize) -> Result<Entry, SyntaxError> {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key_end = None;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '=' | ':' | ' ' | '\t' | '\x0c' => {
                key_end = Some(i);
                break;
            }
            _ => i += 1,
        }
    }
    let raw_key: String = chars[..key_end.unwrap_or(chars.len())].iter().collect();
    let key = unescape(&raw_key, line_no, "")?;
    let Some(key_end) = key_end else {
        return Err(SyntaxError {
            line: line_no,
            key: if looks_like_a_name(&key) {
                key
            } else {
                "(text not shown: it may be part of a secret)".into()
            },
            message: "no \"=\", \":\" or blank between the property name and its value".into(),
        });
    };
    // The separator: blanks, then at most one `=` or `:`, then blanks.
    let mut j = key_end;
    while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\x0c') {
        j += 1;
    }
    if j < chars.len() && matches!(chars[j], '=' | ':') {
        j += 1;
        while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\x0c') {
            j += 1;
        }
    }
    if key.is_empty() {
        return Err(SyntaxError {
            line: line_no,
            key,
            message: "empty property name".into(),
        });
    }
    let raw_value: String = chars[j..].iter().collect();
    let value = unescape(&raw_value, line_no, &key)?;
    Ok(Entry {
        key,
        value,
        line: line_no,
    })
}

/// A line without a separator is usually a property name missing its value,
/// but may be a stray piece of a multi-line secret (a PEM key without its
/// continuation backslashes): only text shaped like a property name is
/// quoted back.
fn looks_like_a_name(text: &str) -> bool {
    text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '>'))
        && (text.contains('.') || text.len() < 16)
}

fn unescape(raw: &str, line_no: usize, key: &str) -> Result<String, SyntaxError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten();
                // A surrogate pair arrives as two escapes; lone surrogates
                // cannot be a Rust char.
                let decoded = match code {
                    Some(high @ 0xD800..=0xDBFF) => low_surrogate(&mut chars).and_then(|low| {
                        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                    }),
                    Some(code) => char::from_u32(code),
                    None => None,
                };
                match decoded {
                    Some(ch) => out.push(ch),
                    None => {
                        return Err(SyntaxError {
                            line: line_no,
                            key: key.to_string(),
                            // The digits are not quoted: the value may be a secret.
                            message: "malformed \\uXXXX escape".into(),
                        });
                    }
                }
            }
            Some(other) => out.push(other),
            // A trailing backslash on the file's last line: Java drops it.
            None => {}
        }
    }
    Ok(out)
}

fn low_surrogate(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let rest = chars.as_str();
    let hex = rest.strip_prefix("\\u")?.get(..4)?;
    let low = u32::from_str_radix(hex, 16).ok()?;
    if !(0xDC00..=0xDFFF).contains(&low) {
        return None;
    }
    for _ in 0..6 {
        chars.next();
    }
    Some(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Entry {
        let mut all = parse(text).unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    #[test]
    fn separators_and_blanks() {
        for text in [
            "a.b=c d",
            "a.b = c d",
            "a.b:c d",
            "  a.b : c d",
            "a.b c d",
            "a.b\t=\tc d",
        ] {
            let e = one(text);
            assert_eq!((e.key.as_str(), e.value.as_str()), ("a.b", "c d"), "{text}");
        }
        // Only the first `=` separates; an empty value is allowed.
        assert_eq!(one("k==v").value, "=v");
        assert_eq!(one("k=").value, "");
        assert_eq!(one("k =   ").value, "");
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_with_line_numbers_kept() {
        let got = parse("# c\n! also\n\n   # indented\nx=1\n\ny = 2\n").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].line, got[1].line), (5, 7));
    }

    #[test]
    fn continuations_join_lines_and_drop_leading_blanks() {
        let got = parse("topics = a, \\\n    b, \\\n    c\nnext=1\n").unwrap();
        assert_eq!(got[0].value, "a, b, c");
        assert_eq!(got[0].line, 1);
        assert_eq!(got[1].line, 4);
        // An even number of backslashes is an escaped backslash, not a
        // continuation.
        let got = parse("p=C:\\\\\nq=2").unwrap();
        assert_eq!(got[0].value, "C:\\");
        assert_eq!(got[1].key, "q");
    }

    #[test]
    fn escapes() {
        assert_eq!(one(r"a\=b\:c\ d=x").key, "a=b:c d");
        assert_eq!(
            one(r"k=tab\there\nnl \u00e9\u0041").value,
            "tab\there\nnl éA"
        );
        assert_eq!(one(r"k=\ud83d\ude00").value, "😀");
        // Java keeps unknown escapes as the character itself: regexes such
        // as `orders\.new` need `\\.` in a properties file.
        assert_eq!(one(r"topics=orders\.new").value, "orders.new");
        assert_eq!(one(r"topics=orders\\.new").value, r"orders\.new");
        // `#` only starts a comment at the beginning of a line.
        assert_eq!(one("k=a#b").value, "a#b");
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let err = parse("a=1\njustakey\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (2, "justakey"));
        let err = parse("a=1\n\nk=\\u12G4\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (3, "k"));
        assert!(err.message.contains("\\u"), "{}", err.message);
        // Text that may be a piece of a secret is not quoted back.
        let err = parse(
            "ssl.keystore.key=-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n",
        )
        .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(!err.key.contains("MIIE"), "{}", err.key);
        let err = parse("k=\\u12zzsecret").unwrap_err();
        assert!(!err.message.contains("12zz"), "{}", err.message);
        let err = parse("=value").unwrap_err();
        assert!(err.message.contains("empty"), "{}", err.message);
    }
}

//! `sasl.jaas.config` values: `<LoginModule class> <flag> key="value" …;`,
//! as Kafka's `JaasConfig` reads them. Kafka clients take exactly one login
//! module. Errors never quote the text: it holds passwords.

use std::collections::BTreeMap;

/// One login module with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    /// The fully qualified class name.
    pub class: String,
    /// `key` → `value`, unquoted.
    pub options: BTreeMap<String, String>,
}

impl LoginModule {
    /// The class name without its package (`PlainLoginModule`).
    pub fn simple_name(&self) -> &str {
        self.class.rsplit('.').next().unwrap_or(&self.class)
    }
}

const FLAGS: &[&str] = &["required", "requisite", "sufficient", "optional"];

/// Parses a JAAS configuration holding one login module.
pub fn parse(text: &str) -> Result<LoginModule, String> {
    let tokens = tokenize(text)?;
    let mut it = tokens.into_iter().peekable();
    let class = match it.next() {
        Some(Token::Word(w)) => w,
        _ => return Err("expected a login module class name first".into()),
    };
    match it.next() {
        Some(Token::Word(flag)) if FLAGS.contains(&flag.to_ascii_lowercase().as_str()) => {}
        _ => {
            return Err(format!(
            "expected a control flag (required, requisite, sufficient or optional) after {class}"
        ))
        }
    }
    let mut options = BTreeMap::new();
    loop {
        match it.next() {
            Some(Token::Semicolon) => break,
            Some(Token::Word(key)) => {
                if it.next() != Some(Token::Equals) {
                    return Err(format!("option {key} of {class} has no \"=\""));
                }
                match it.next() {
                    Some(Token::Word(v) | Token::Quoted(v)) => {
                        options.insert(key, v);
                    }
                    _ => return Err(format!("option {key} of {class} has no value")),
                }
            }
            Some(_) => return Err(format!("unexpected text in the options of {class}")),
            None => return Err(format!("the options of {class} do not end with \";\"")),
        }
    }
    if it.next().is_some() {
        return Err("more than one login module: Kafka clients take exactly one".into());
    }
    Ok(LoginModule { class, options })
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                tokens.push(Token::Equals);
            }
            ';' => {
                chars.next();
                tokens.push(Token::Semicolon);
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped) => value.push(escaped),
                            None => return Err("unterminated quoted value".into()),
                        },
                        Some(other) => value.push(other),
                        None => return Err("unterminated quoted value".into()),
                    }
                }
                tokens.push(Token::Quoted(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '=' | ';' | '"') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_with_quoted_options() {
        let m = parse(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="ferry" password="p;a=s\"s w";"#,
        )
        .unwrap();
        assert_eq!(m.simple_name(), "ScramLoginModule");
        assert_eq!(m.options["username"], "ferry");
        assert_eq!(m.options["password"], "p;a=s\"s w");
    }

    #[test]
    fn unquoted_options_and_no_options() {
        let m = parse("com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true keyTab=\"/k.keytab\" principal=\"a@B\";").unwrap();
        assert_eq!(m.options["useKeyTab"], "true");
        assert_eq!(m.options["principal"], "a@B");
        let m = parse("software.amazon.msk.auth.iam.IAMLoginModule required;").unwrap();
        assert!(m.options.is_empty());
    }

    #[test]
    fn malformed_configs_are_refused_without_quoting_secrets() {
        for bad in [
            "",
            "Module required password=\"sentinel\"",
            "Module password=\"sentinel\";",
            "Module required password \"sentinel\";",
            "Module required password=\"sentinel;",
            "A required; B required;",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(!err.contains("sentinel"), "{bad}: {err}");
        }
    }
}

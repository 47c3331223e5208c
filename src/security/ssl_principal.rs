//! The principal of a TLS client: the certificate's subject distinguished name (RFC 2253, as
//! Java's X500Principal.getName() prints it) mapped by Kafka's ssl.principal.mapping.rules.

use anyhow::{anyhow, bail, Result};
use regex::Regex;

/// One of Kafka's rules: DEFAULT (the DN as it is) or RULE:pattern/replacement/[LU], where the
/// pattern must match the whole DN.
#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

#[derive(Debug, Clone)]
pub struct Rules(Vec<Rule>);

/// Splits `s` at unescaped `/`, keeping the escapes (they belong to the regex).
fn split_unescaped(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let last = parts.last_mut().unwrap();
                last.push('\\');
                if let Some(n) = chars.next() {
                    last.push(n);
                }
            }
            '/' => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    parts
}

/// Java's Matcher.replaceAll replacement ($1, \x) in the regex crate's syntax (${1}, $$).
fn java_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(n) => out.push(n),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Splits the rule list at the commas between rules (a comma inside a RULE's pattern or
/// replacement, before its closing `/`, belongs to the rule).
fn split_rules(s: &str) -> Vec<String> {
    let mut rules = Vec::new();
    let mut cur = String::new();
    let mut slashes = 0;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                continue;
            }
            '/' => slashes += 1,
            ',' if !cur.trim_start().starts_with("RULE:") || slashes >= 2 => {
                rules.push(std::mem::take(&mut cur));
                slashes = 0;
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    rules.push(cur);
    rules
        .into_iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect()
}

impl Rules {
    pub fn parse(s: &str) -> Result<Rules> {
        let mut rules = Vec::new();
        for text in split_rules(s) {
            if text == "DEFAULT" {
                rules.push(Rule::Default);
                continue;
            }
            let body = text
                .strip_prefix("RULE:")
                .ok_or_else(|| anyhow!("Invalid rule: {text}"))?;
            let parts = split_unescaped(body);
            if parts.len() != 3 {
                bail!("Invalid rule: {text}");
            }
            let case = match parts[2].trim() {
                "" => None,
                "L" => Some('L'),
                "U" => Some('U'),
                _ => bail!("Invalid rule: {text}"),
            };
            let pattern = Regex::new(&format!("^(?:{})$", parts[0]))
                .map_err(|e| anyhow!("Invalid rule: {text}: {e}"))?;
            rules.push(Rule::Replace {
                pattern,
                replacement: java_replacement(&parts[1]),
                case,
            });
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(Rules(rules))
    }

    /// The short name of `dn`: the first rule that applies. `Err` when none does (Kafka fails
    /// the authentication then).
    pub fn map(&self, dn: &str) -> Result<String> {
        for rule in &self.0 {
            match rule {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(dn) {
                        let name = pattern.replace(dn, replacement.as_str()).into_owned();
                        return Ok(match case {
                            Some('L') => name.to_lowercase(),
                            Some('U') => name.to_uppercase(),
                            _ => name,
                        });
                    }
                }
            }
        }
        bail!("No rules apply to {dn}")
    }
}

/// A DER element: (tag, contents, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn oid_string(oid: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut v: u64 = 0;
    for (i, b) in oid.iter().enumerate() {
        v = (v << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if parts.is_empty() && i < oid.len() {
                let first = (v / 40).min(2);
                parts.push(first.to_string());
                parts.push((v - first * 40).to_string());
            } else {
                parts.push(v.to_string());
            }
            v = 0;
        }
    }
    parts.join(".")
}

/// Java's keywords for RFC 2253 names.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn escape(value: &str) -> String {
    let mut out = String::new();
    let n = value.chars().count();
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == n && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn string_value(tag: u8, v: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, TeletexString (as Latin-1), NumericString
        0x0c | 0x13 | 0x16 | 0x12 => std::str::from_utf8(v).ok().map(str::to_string),
        0x14 => Some(v.iter().map(|b| *b as char).collect()),
        // BMPString
        0x1e => {
            let units: Vec<u16> = v
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// The subject of a DER certificate in RFC 2253 form ("CN=alice,OU=eng,O=Example,C=US": the
/// last RDN first). None if the certificate does not parse.
pub fn subject_dn(cert: &[u8]) -> Option<String> {
    let (_, certificate, _) = der(cert)?;
    let (_, tbs, _) = der(certificate)?;
    let mut rest = tbs;
    let (tag, _, r) = der(rest)?;
    if tag == 0xa0 {
        rest = r; // version
    }
    let (_, _, r) = der(rest)?; // serial
    let (_, _, r) = der(r)?; // signature algorithm
    let (_, _, r) = der(r)?; // issuer
    let (_, _, r) = der(r)?; // validity
    let (tag, mut name, _) = der(r)?; // subject
    if tag != 0x30 {
        return None;
    }
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (_, mut set, r) = der(name)?;
        name = r;
        let mut avas = Vec::new();
        while !set.is_empty() {
            let (_, ava, r) = der(set)?;
            set = r;
            let (_, oid, r) = der(ava)?;
            let oid = oid_string(oid);
            let (vtag, value, _) = der(r)?;
            let text = match (keyword(&oid), string_value(vtag, value)) {
                (Some(k), Some(v)) => format!("{k}={}", escape(&v)),
                _ => {
                    // Unknown attribute or encoding: the OID and the hex of the DER value.
                    let hex: String = r[..r.len() - der(r)?.2.len()]
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    format!("{oid}=#{hex}")
                }
            };
            avas.push(text);
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_rule_examples() {
        // The examples of Kafka's documentation for ssl.principal.mapping.rules.
        let rules = Rules::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            rules
                .map("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .unwrap(),
            "serviceuser"
        );
        assert_eq!(
            rules
                .map("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .unwrap(),
            "adminuser@admin"
        );
        assert_eq!(rules.map("cn=Other").unwrap(), "other");
        assert_eq!(rules.map("O=x").unwrap(), "O=x");
        let upper = Rules::parse("RULE:^CN=([^,]*).*$/$1/U").unwrap();
        assert_eq!(upper.map("CN=bob,O=x").unwrap(), "BOB");
        assert!(upper.map("O=x").is_err());
        assert_eq!(
            Rules::parse("DEFAULT").unwrap().map("CN=a").unwrap(),
            "CN=a"
        );
        assert!(Rules::parse("RULE:abc").is_err());
        assert!(Rules::parse("NOPE").is_err());
        assert!(Rules::parse("RULE:a/b/X").is_err());
    }

    #[test]
    fn escaped_slash_and_dollar() {
        let r = Rules::parse(r"RULE:^CN=(.*)\/x$/\$$1/").unwrap();
        assert_eq!(r.map("CN=a/x").unwrap(), "$a");
    }

    #[test]
    fn subject_of_a_real_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Example, Inc");
        dn.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_dn(cert.der()).unwrap(),
            r"CN=alice,O=Example\, Inc,C=US"
        );
        assert_eq!(subject_dn(b"\x30\x03\x02\x01"), None);
        assert_eq!(subject_dn(b""), None);
    }
}

//! The route file: static routes by the million in a compact text form, for `xpe route load`
//! and `xpe run --routes` (docs/routes.md). One change per line:
//!
//! ```text
//! # comments and blank lines are skipped
//! vpc-a  198.19.0.0/16   via 198.18.0.2  labels 16001/2001   # add, or replace the route
//! global 203.0.113.0/24  via 198.18.0.2                       # `global`: the global table
//! del vpc-a 198.19.7.0/24                                     # remove a static route
//! ```
//!
//! TOML takes about 9 s to parse a million routes; these lines take a split on white space
//! and three small parses each. Everything that can be checked without the running tables
//! (prefix, host bits, next hop, labels) is checked here, each error naming its line; the
//! daemon checks the rest (VRF, next-hop subnet, clashes) before it applies anything.

use std::net::IpAddr;

use xpe_dataplane::tables::{IpPrefix, LabelStack};

use crate::resolve::{self, RouteError};

/// One line's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLine<'a> {
    /// Line number in the file, from 1.
    pub line: usize,
    /// The VRF's name (`global` for the global table).
    pub vrf: &'a str,
    /// The prefix.
    pub prefix: IpPrefix,
    /// The next hop and the labels to push, or `None` to remove the route.
    pub next: Option<(IpAddr, LabelStack)>,
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The words are not one of the two forms.
    #[error(
        "expected `VRF PREFIX via NEXT-HOP [labels L/L...]` or `del VRF PREFIX`, found \"{0}\""
    )]
    Form(String),
    /// A label is not a number.
    #[error("label \"{0}\" is not a number")]
    LabelText(String),
    /// A field is not valid.
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// A line that was refused, with its number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct FileError {
    /// Line number, from 1.
    pub line: usize,
    /// What is wrong.
    pub error: LineError,
}

/// Parses a whole route file; the errors of at most `max_errors` lines come back (the count
/// of the rest is in the last one's place, see [`parse`]'s caller).
pub fn parse(text: &str, max_errors: usize) -> Result<Vec<RouteLine<'_>>, Vec<FileError>> {
    let mut routes = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let body = raw.split('#').next().unwrap_or_default();
        if body.trim().is_empty() {
            continue;
        }
        match parse_line(i + 1, body) {
            Ok(r) => routes.push(r),
            Err(error) => {
                if errors.len() == max_errors {
                    break;
                }
                errors.push(FileError { line: i + 1, error });
            }
        }
    }
    if errors.is_empty() {
        Ok(routes)
    } else {
        Err(errors)
    }
}

/// One non-empty line, comment removed.
pub fn parse_line(line: usize, body: &str) -> Result<RouteLine<'_>, LineError> {
    let words: Vec<&str> = body.split_whitespace().collect();
    let form = || LineError::Form(body.trim().to_string());
    match words.as_slice() {
        ["del", vrf, prefix] => Ok(RouteLine {
            line,
            vrf,
            prefix: resolve::prefix(prefix)?,
            next: None,
        }),
        [vrf, prefix, "via", via, rest @ ..] => {
            let labels: Vec<i64> = match rest {
                [] => Vec::new(),
                ["labels", list] => list
                    .split(['/', ','])
                    .map(|l| l.parse().map_err(|_| LineError::LabelText(l.to_string())))
                    .collect::<Result<_, _>>()?,
                _ => return Err(form()),
            };
            Ok(RouteLine {
                line,
                vrf,
                prefix: resolve::prefix(prefix)?,
                next: Some((resolve::next_hop(via)?, resolve::labels(&labels, false)?)),
            })
        }
        _ => Err(form()),
    }
}

/// The line for one route, as `parse_line` reads it.
pub fn format_line(vrf: &str, prefix: IpPrefix, next: Option<(IpAddr, LabelStack)>) -> String {
    match next {
        None => format!("del {vrf} {prefix}"),
        Some((via, labels)) if labels.is_empty() => format!("{vrf} {prefix} via {via}"),
        Some((via, labels)) => format!("{vrf} {prefix} via {via} labels {labels}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms_comments_and_blank_lines() {
        let text = "# routes\n\nvpc-a 198.19.0.0/16 via 198.18.0.2 labels 16001/2001\n  global  203.0.113.0/24 via 198.18.0.2   # no labels\ndel vpc-a 198.19.7.0/24\nv 2001:db8:1::/48 via 198.18.0.2 labels 16001,2002\n";
        let routes = parse(text, 10).unwrap();
        assert_eq!(routes.len(), 4);
        assert_eq!(
            (routes[0].line, routes[0].vrf, routes[0].prefix.to_string()),
            (3, "vpc-a", "198.19.0.0/16".to_string())
        );
        let (via, labels) = routes[0].next.unwrap();
        assert_eq!(
            (via.to_string(), labels.to_string()),
            ("198.18.0.2".into(), "16001/2001".into())
        );
        assert!(routes[1].next.unwrap().1.is_empty());
        assert_eq!((routes[2].line, routes[2].next), (5, None));
        assert_eq!(routes[3].next.unwrap().1.to_string(), "16001/2002");
        // An IPv6 next hop (whether the table has its subnet is checked against the tables).
        let v6 = parse_line(9, "vpc-a 2001:db8:20::/48 via 2001:db8:a::2").unwrap();
        assert_eq!(
            v6.next.map(|(via, _)| via),
            Some("2001:db8:a::2".parse().unwrap())
        );
        // Each route written back reads the same.
        for r in &routes {
            let text = format_line(r.vrf, r.prefix, r.next);
            assert_eq!(&parse_line(r.line, &text).unwrap(), r);
        }
    }

    #[test]
    fn every_bad_line_is_named_with_its_number() {
        let text = "v 198.19.0.0/16 via 198.18.0.2\nv 198.19.0.1/16 via 198.18.0.2\nv 198.19.0.0/16 to 198.18.0.2\nv 198.19.0.0/16 via fe80::1\nv 198.19.0.0/16 via 198.18.0.2 labels 16001/x\nv 198.19.0.0/16 via 198.18.0.2 labels 15\ndel v\n";
        let errors = parse(text, 10).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "line 2: prefix 198.19.0.1/16 has host bits set; did you mean 198.19.0.0/16?",
                "line 3: expected `VRF PREFIX via NEXT-HOP [labels L/L...]` or `del VRF PREFIX`, found \"v 198.19.0.0/16 to 198.18.0.2\"",
                "line 4: via fe80::1 is a link-local address: give the next hop's global address, in a connected subnet (an address6)",
                "line 5: label \"x\" is not a number",
                "line 6: label 15 is outside 16..1048575 (0..15 are reserved labels)",
                "line 7: expected `VRF PREFIX via NEXT-HOP [labels L/L...]` or `del VRF PREFIX`, found \"del v\"",
            ]
        );
        assert_eq!(parse(text, 2).unwrap_err().len(), 2);
    }
}

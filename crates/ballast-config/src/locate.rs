//! Finds where a field path (`route[1].timeout.connect`) sits in the TOML source.
//!
//! Semantic checks run on typed values that no longer carry positions, so the line and column
//! are recovered afterwards from a span-preserving parse of the same text.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Value};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Splits `a.b[2].c` into segments.
pub fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let key = &rest[..open];
            if !key.is_empty() {
                out.push(Segment::Key(key.to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    out.push(Segment::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Segment::Key(rest.to_string()));
        }
    }
    out
}

/// A position in the parsed document: a table-like item or a plain value.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a toml_edit::Table),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn key(self, k: &str) -> Option<(Option<Range<usize>>, Node<'a>)> {
        let from_item = |(key, it): (&toml_edit::Key, &'a Item)| (key.span(), Node::Item(it));
        match self {
            Node::Item(Item::Value(v)) | Node::Value(v) => v
                .as_inline_table()?
                .get_key_value(k)
                .map(|(key, v)| (key.span(), Node::Item(v))),
            Node::Item(it) => it.as_table_like()?.get_key_value(k).map(from_item),
            Node::Table(t) => t.get_key_value(k).map(from_item),
        }
    }

    fn index(self, i: usize) -> Option<(Option<Range<usize>>, Node<'a>)> {
        match self {
            Node::Item(Item::ArrayOfTables(aot)) => aot.get(i).map(|t| (t.span(), Node::Table(t))),
            Node::Item(Item::Value(v)) | Node::Value(v) => {
                v.as_array()?.get(i).map(|v| (v.span(), Node::Value(v)))
            }
            _ => None,
        }
    }
}

/// 1-based (line, column) of the deepest part of `path` found in `src`.
pub fn locate(src: &str, path: &str) -> Option<(usize, usize)> {
    let doc = ImDocument::parse(src).ok()?;
    let mut node = Node::Item(doc.as_item());
    let mut span: Option<Range<usize>> = None;
    for seg in segments(path) {
        let next = match seg {
            Segment::Key(k) => node.key(&k),
            Segment::Index(i) => node.index(i),
        };
        let Some((s, n)) = next else { break };
        span = s.or(span);
        node = n;
    }
    span.map(|s| line_col(src, s.start))
}

/// 1-based line and column of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "[admin]\nlisten = \"127.0.0.1:9900\"\n\n[[route]]\nupstream = \"a\"\n\n[[route]]\nupstream = \"b\"\ntimeout = { connect = 300 }\n\n[[upstream]]\nname = \"x\"\nservers = [\n  { addr = \"127.0.0.1:1\" },\n  { addr = \"127.0.0.1:2\", weight = -1 },\n]\n";

    #[test]
    fn finds_nested_inline_fields() {
        assert_eq!(locate(SRC, "route[1].timeout.connect"), Some((9, 13)));
        assert_eq!(locate(SRC, "admin.listen"), Some((2, 1)));
        assert_eq!(locate(SRC, "upstream[0].servers[1].weight"), Some((15, 27)));
    }

    #[test]
    fn splits_paths() {
        assert_eq!(
            segments("a[1].b"),
            vec![
                Segment::Key("a".into()),
                Segment::Index(1),
                Segment::Key("b".into())
            ]
        );
    }
}

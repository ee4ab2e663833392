//! The fenced blocks of PROTOCOL.md that tests own: ```` ```vector NAME ```` blocks (hex of a
//! computed value, wrapped at 32 bytes a line) and ```` ```note NAME ```` blocks (a signed note's
//! text). A test compares each block it owns with its computed value and, when regenerating,
//! rewrites them in place.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The environment variable that turns the vector tests from checking into rewriting.
pub const REGEN_VAR: &str = "PAYCHAN_REGENERATE_VECTORS";

/// Whether the vector tests rewrite their files (`PAYCHAN_REGENERATE_VECTORS=1`) instead of
/// failing on a difference.
pub fn regenerate() -> bool {
    std::env::var(REGEN_VAR).is_ok_and(|v| v == "1")
}

/// A fenced block ```` ```KIND NAME ````: its name, the line range of its content
/// (`first..end`, 0-based; `end` is the closing fence), and the content's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The name after the kind.
    pub name: String,
    /// The first content line.
    pub first: usize,
    /// The closing fence's line.
    pub end: usize,
    /// The content lines.
    pub lines: Vec<String>,
}

impl Block {
    /// The content as one hex string (a vector block): the lines joined, white space dropped.
    pub fn hex(&self) -> String {
        self.lines.concat().split_whitespace().collect()
    }

    /// The content as text (a note block): each line with its newline; an empty block is one
    /// empty line.
    pub fn text(&self) -> String {
        let mut body: String = self.lines.iter().map(|l| format!("{l}\n")).collect();
        if body.is_empty() {
            body.push('\n');
        }
        body
    }
}

/// Every ```` ```KIND NAME ```` block of `text`, in order. Panics on a block that is not
/// closed (the document is broken).
pub fn fenced_blocks(text: &str, kind: &str) -> Vec<Block> {
    let opening = format!("```{kind} ");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(name) = lines[i].strip_prefix(opening.as_str()) {
            let first = i + 1;
            let mut end = first;
            while end < lines.len() && lines[end].trim_end() != "```" {
                end += 1;
            }
            assert!(
                end < lines.len(),
                "PROTOCOL.md: {kind} block {name} is not closed"
            );
            out.push(Block {
                name: name.trim().to_string(),
                first,
                end,
                lines: lines[first..end].iter().map(|l| l.to_string()).collect(),
            });
            i = end;
        }
        i += 1;
    }
    out
}

/// Hex wrapped at 64 characters (32 bytes) per line, as the vector blocks hold it.
pub fn wrap(hex: &str) -> Vec<String> {
    if hex.is_empty() {
        return vec![String::new()];
    }
    hex.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).expect("ASCII"))
        .collect()
}

/// `text` with the content of each block (in document order) replaced by its new lines; the
/// rest is kept line for line, and the result ends with a newline.
pub fn splice<'a>(text: &str, blocks: impl IntoIterator<Item = (&'a Block, Vec<String>)>) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut next = 0;
    for (b, content) in blocks {
        out.extend(lines[next..b.first].iter().map(|l| l.to_string()));
        out.extend(content);
        next = b.end;
    }
    out.extend(lines[next..].iter().map(|l| l.to_string()));
    let mut new = out.join("\n");
    new.push('\n');
    new
}

/// Writes `new` to `path` unless it equals `old`.
pub fn write_if_changed(path: &Path, old: &str, new: &str) {
    if new != old {
        std::fs::write(path, new).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// What one test owns of PROTOCOL.md's vector blocks.
#[derive(Debug, Clone, Copy)]
pub struct VectorOwner<'a> {
    /// The test file, for "unknown to ..." reports.
    pub test: &'a str,
    /// The blocks it owns, for the failure's heading (`vector blocks`, `ledger vector blocks`).
    pub what: &'a str,
    /// Whether a block name is one of its.
    pub owns: fn(&str) -> bool,
    /// How to regenerate, appended to a failure.
    pub hint: &'a str,
}

/// Checks the vector blocks of the document at `path` that `owner` owns against `computed`
/// (name to hex): each must equal its computed value, none may appear twice, be unknown or be
/// missing. When [`regenerate`] is on, differences are not failures and the blocks are
/// rewritten with the computed values (unknown, doubled or missing blocks still fail).
pub fn check_vector_blocks(path: &Path, owner: VectorOwner<'_>, computed: &BTreeMap<String, String>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let blocks: Vec<Block> = fenced_blocks(&text, "vector")
        .into_iter()
        .filter(|b| (owner.owns)(&b.name))
        .collect();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for b in &blocks {
        if !seen.insert(b.name.clone()) {
            problems.push(format!("vector `{}` appears twice", b.name));
        }
        match computed.get(&b.name) {
            None => problems.push(format!("vector `{}` is unknown to {}", b.name, owner.test)),
            Some(v) if *v != b.hex() && !regenerate() => problems.push(format!(
                "vector `{}` differs:\n    PROTOCOL.md {}\n    computed    {}",
                b.name,
                b.hex(),
                v
            )),
            Some(_) => {}
        }
    }
    for name in computed.keys() {
        if !seen.contains(name) {
            problems.push(format!("vector `{name}` is missing from PROTOCOL.md"));
        }
    }
    assert!(
        problems.is_empty(),
        "PROTOCOL.md's {} do not match:\n  {}\n{}",
        owner.what,
        problems.join("\n  "),
        owner.hint
    );
    if regenerate() {
        let new = splice(&text, blocks.iter().map(|b| (b, wrap(&computed[&b.name]))));
        write_if_changed(path, &text, &new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Title\n\ntext\n\n```vector a-one\n0011\n2233 \n```\n\nmore\n\n```note n\nline 1\nline 2\n```\n\n```vector b-two\n```\nend\n";

    #[test]
    fn blocks_are_found_with_their_lines() {
        let v = fenced_blocks(DOC, "vector");
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].name.as_str(), v[0].first, v[0].end), ("a-one", 5, 7));
        assert_eq!(v[0].hex(), "00112233");
        assert_eq!((v[1].name.as_str(), v[1].hex().as_str()), ("b-two", ""));
        let n = fenced_blocks(DOC, "note");
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].text(), "line 1\nline 2\n");
        assert_eq!(v[1].text(), "\n");
    }

    #[test]
    #[should_panic(expected = "vector block x is not closed")]
    fn an_open_block_is_refused() {
        fenced_blocks("```vector x\n00\n", "vector");
    }

    #[test]
    fn wrap_cuts_at_32_bytes() {
        assert_eq!(wrap(""), vec![String::new()]);
        let hex = "ab".repeat(40);
        assert_eq!(wrap(&hex), vec!["ab".repeat(32), "ab".repeat(8)]);
    }

    #[test]
    fn splice_replaces_only_the_content() {
        let v = fenced_blocks(DOC, "vector");
        let new = splice(DOC, [(&v[0], wrap("ff")), (&v[1], vec!["ee".to_string()])]);
        assert_eq!(
            new,
            DOC.replace("0011\n2233 \n", "ff\n")
                .replace("b-two\n```", "b-two\nee\n```")
        );
        assert_eq!(splice(DOC, []), DOC);
    }
}

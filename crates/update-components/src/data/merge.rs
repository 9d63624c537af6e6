//! A three-way merge of line-based files: the previous vendor version (the base), the device's
//! current file (the user's) and the new vendor version.
//!
//! Lines are matched with a longest common subsequence of each side against the base; a base
//! line kept by both sides is a sync point, and between two sync points each side either left
//! the base as it was or changed it. A hunk only one side changed takes that side; a hunk both
//! changed the same way takes it once; a hunk both changed differently is a **conflict**: the
//! user's lines are kept and the conflict is returned so the caller records it (nothing is
//! silently lost). Changes to adjacent lines form one hunk (as in `diff3`).
//!
//! Common leading and trailing lines are matched first; the middle is matched with a quadratic
//! table up to [`MAX_CELLS`] cells, beyond which the middle is one hunk.

/// The largest middle part (base lines × other lines) matched line by line.
pub const MAX_CELLS: usize = 4_000_000;

/// One hunk both sides changed differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The first line of the kept (user's) lines in the merged output, from 1.
    pub line: usize,
    /// The previous vendor version's lines.
    pub base: Vec<u8>,
    /// The user's lines (kept).
    pub ours: Vec<u8>,
    /// The new vendor version's lines (not applied).
    pub theirs: Vec<u8>,
}

/// The merged file and its conflicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The merged bytes.
    pub bytes: Vec<u8>,
    /// The hunks where the user's lines were kept over the vendor's.
    pub conflicts: Vec<Conflict>,
}

fn lines(text: &[u8]) -> Vec<&[u8]> {
    text.split_inclusive(|&b| b == b'\n').collect()
}

/// For each line of `a`, the index of the line of `b` it is matched with.
fn matching(a: &[&[u8]], b: &[&[u8]]) -> Vec<Option<usize>> {
    let mut map = vec![None; a.len()];
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    for (i, m) in map.iter_mut().enumerate().take(prefix) {
        *m = Some(i);
    }
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    for k in 0..suffix {
        map[a.len() - 1 - k] = Some(b.len() - 1 - k);
    }
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let (n, m) = (am.len(), bm.len());
    if n == 0 || m == 0 || n.saturating_mul(m) > MAX_CELLS {
        return map;
    }
    // table[i][j]: LCS length of am[i..] and bm[j..].
    let w = m + 1;
    let mut table = vec![0u32; (n + 1) * w];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i * w + j] = if am[i] == bm[j] {
                table[(i + 1) * w + j + 1] + 1
            } else {
                table[(i + 1) * w + j].max(table[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if am[i] == bm[j] {
            map[prefix + i] = Some(prefix + j);
            i += 1;
            j += 1;
        } else if table[(i + 1) * w + j] >= table[i * w + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    map
}

/// Resolves one hunk between sync points into `out`.
fn hunk<'a>(hb: &[&'a [u8]], ho: &[&'a [u8]], ht: &[&'a [u8]], out: &mut Vec<&'a [u8]>, conflicts: &mut Vec<Conflict>) {
    if ho == hb {
        out.extend_from_slice(ht);
    } else if ht == hb || ho == ht {
        out.extend_from_slice(ho);
    } else {
        conflicts.push(Conflict { line: out.len() + 1, base: hb.concat(), ours: ho.concat(), theirs: ht.concat() });
        out.extend_from_slice(ho);
    }
}

/// Merges `ours` (the user's file) and `theirs` (the new vendor version) against `base` (the
/// previous vendor version; empty when there was none).
#[must_use]
pub fn merge3(base: &[u8], ours: &[u8], theirs: &[u8]) -> Merged {
    let (b, o, t) = (lines(base), lines(ours), lines(theirs));
    let (mo, mt) = (matching(&b, &o), matching(&b, &t));
    let mut out: Vec<&[u8]> = Vec::new();
    let mut conflicts = Vec::new();
    let mut start = (0, 0, 0);
    for i in 0..b.len() {
        if let (Some(oj), Some(tj)) = (mo[i], mt[i]) {
            hunk(&b[start.0..i], &o[start.1..oj], &t[start.2..tj], &mut out, &mut conflicts);
            out.push(b[i]);
            start = (i + 1, oj + 1, tj + 1);
        }
    }
    hunk(&b[start.0..], &o[start.1..], &t[start.2..], &mut out, &mut conflicts);
    Merged { bytes: out.concat(), conflicts }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(base: &str, ours: &str, theirs: &str) -> (String, usize) {
        let r = merge3(base.as_bytes(), ours.as_bytes(), theirs.as_bytes());
        (String::from_utf8(r.bytes).unwrap(), r.conflicts.len())
    }

    #[test]
    fn changes_to_different_lines_are_both_kept() {
        let base = "a=1\nb=2\nc=3\nd=4\ne=5\n";
        let ours = "a=1\nb=user\nc=3\nd=4\ne=5\n";
        let theirs = "a=1\nb=2\nc=3\nd=4\ne=vendor\nf=new\n";
        assert_eq!(m(base, ours, theirs), ("a=1\nb=user\nc=3\nd=4\ne=vendor\nf=new\n".into(), 0));
        // The user deleted a line, the vendor inserted one elsewhere.
        let ours = "a=1\nc=3\nd=4\ne=5\n";
        let theirs = "x=0\na=1\nb=2\nc=3\nd=4\ne=5\n";
        assert_eq!(m(base, ours, theirs), ("x=0\na=1\nc=3\nd=4\ne=5\n".into(), 0));
    }

    #[test]
    fn one_sided_and_identical_changes() {
        let base = "a\nb\nc\n";
        assert_eq!(m(base, base, "a\nB\nc\n"), ("a\nB\nc\n".into(), 0));
        assert_eq!(m(base, "a\nB\nc\n", base), ("a\nB\nc\n".into(), 0));
        assert_eq!(m(base, "a\nB\nc\n", "a\nB\nc\n"), ("a\nB\nc\n".into(), 0));
        assert_eq!(m("", "", "new\n"), ("new\n".into(), 0));
    }

    #[test]
    fn conflicts_keep_the_users_lines_and_are_reported() {
        let base = "a\nb\nc\nd\n";
        let r = merge3(base.as_bytes(), b"a\nuser\nc\nd\n", b"a\nvendor\nc\nD\n");
        assert_eq!(String::from_utf8(r.bytes).unwrap(), "a\nuser\nc\nD\n");
        assert_eq!(
            r.conflicts,
            [Conflict { line: 2, base: b"b\n".to_vec(), ours: b"user\n".to_vec(), theirs: b"vendor\n".to_vec() }]
        );
        // No previous vendor version: two different files are one conflict, the user's kept.
        let r = merge3(b"", b"mine\n", b"vendor\n");
        assert_eq!((r.bytes.as_slice(), r.conflicts.len()), (&b"mine\n"[..], 1));
    }
}

//! The einsum grammar, as numpy reads it, turned into an [`Expr`]: one list
//! of dense label ids per operand, the output labels and the size of every
//! label.
//!
//! - `"ij,jk->ik"`: explicit output; `"ij,jk"`: implicit output, the labels
//!   seen exactly once, in ASCII order (upper case before lower case);
//! - `...` stands for the dims a term does not name; ellipsis dims broadcast
//!   right-aligned as in numpy and come first in an implicit output;
//! - a label repeated in one term takes a diagonal; a label absent from the
//!   output is summed; an empty term is a scalar;
//! - a dim of size 1 broadcasts against the same label's larger size.
//!
//! Whitespace is ignored; every error names the position (in characters)
//! of the fault in the equation as given.

use crate::error::{Error, Result};

/// A dense label id: an index into [`Expr::sizes`] and [`Expr::names`].
pub(crate) type Label = usize;

/// A parsed einsum expression with its sizes resolved.
#[derive(Clone, Debug)]
pub(crate) struct Expr {
    /// The equation as the user wrote it (for messages).
    pub equation: String,
    /// Labels of each operand's dims, in order (repeats allowed).
    pub inputs: Vec<Vec<Label>>,
    /// Labels of the result's dims, in order (no repeats).
    pub output: Vec<Label>,
    /// Size of each label.
    pub sizes: Vec<usize>,
    /// Display character of each label (letters; ellipsis dims and
    /// network bonds get characters outside a-z, A-Z).
    pub names: Vec<char>,
}

impl Expr {
    /// The shape an operand's labels describe (broadcast sizes resolved).
    pub fn shape_of(&self, labels: &[Label]) -> Vec<usize> {
        labels.iter().map(|&l| self.sizes[l]).collect()
    }

    /// `"ab,bc->ac"` for the given terms (display names).
    pub fn term(&self, labels: &[Label]) -> String {
        labels.iter().map(|&l| self.names[l]).collect()
    }
}

/// The display character of the `k`-th generated label (ellipsis dims,
/// network bonds): letters first, then Greek and Latin-extended letters so
/// that `--explain` stays one character per dim.
pub(crate) fn generated_name(k: usize) -> char {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if let Some(&c) = LETTERS.get(k) {
        return c as char;
    }
    // U+0100.. is a long run of printable letters.
    char::from_u32(0x100 + (k - LETTERS.len()) as u32).unwrap_or('?')
}

/// One token of a term: a letter or an ellipsis, with its position.
#[derive(Clone, Copy, Debug)]
enum Tok {
    Letter(char, usize),
    Ellipsis(usize),
}

struct Term {
    start: usize,
    toks: Vec<Tok>,
}

impl Term {
    fn letters(&self) -> usize {
        self.toks
            .iter()
            .filter(|t| matches!(t, Tok::Letter(..)))
            .count()
    }
    fn has_ellipsis(&self) -> bool {
        self.toks.iter().any(|t| matches!(t, Tok::Ellipsis(_)))
    }
}

/// Parses `equation` for operands of the given shapes.
pub(crate) fn parse(equation: &str, shapes: &[&[usize]]) -> Result<Expr> {
    let err = |position: usize, msg: String| Error::Einsum {
        equation: equation.to_string(),
        position,
        msg,
    };
    let chars: Vec<(usize, char)> = equation
        .chars()
        .enumerate()
        .filter(|(_, c)| !c.is_whitespace())
        .collect();
    // Split at "->".
    let mut arrow = None;
    for w in 0..chars.len().saturating_sub(1) {
        if chars[w].1 == '-' && chars[w + 1].1 == '>' {
            if arrow.is_some() {
                return Err(err(chars[w].0, "'->' appears twice".into()));
            }
            arrow = Some(w);
        }
    }
    let (lhs, rhs) = match arrow {
        Some(w) => (&chars[..w], Some(&chars[w + 2..])),
        None => (&chars[..], None),
    };
    let end = equation.chars().count();
    let mut terms = Vec::new();
    let mut current = Vec::new();
    for &(pos, c) in lhs {
        if c == ',' {
            terms.push(std::mem::take(&mut current));
            continue;
        }
        current.push((pos, c));
    }
    terms.push(current);
    let terms: Vec<Term> = terms
        .iter()
        .map(|t| tokenize(t, &err, end))
        .collect::<Result<_>>()?;
    if terms.len() != shapes.len() {
        return Err(err(
            0,
            format!(
                "{} subscript terms but {} operands were given",
                terms.len(),
                shapes.len()
            ),
        ));
    }

    // Ellipsis widths: what each operand's rank leaves to its '...'.
    let mut widths = Vec::with_capacity(terms.len());
    for (i, (term, shape)) in terms.iter().zip(shapes).enumerate() {
        let named = term.letters();
        let fits = if term.has_ellipsis() {
            shape.len() >= named
        } else {
            shape.len() == named
        };
        if !fits {
            return Err(err(
                term.start,
                format!(
                    "operand {i} has shape {shape:?} (rank {}) but its subscripts name {named} dims",
                    shape.len()
                ),
            ));
        }
        widths.push(shape.len() - named);
    }
    let ell_rank = widths.iter().copied().max().unwrap_or(0);

    // Dense label ids: letters in order of first appearance, then ellipsis dims.
    let mut names: Vec<char> = Vec::new();
    for term in &terms {
        for tok in &term.toks {
            if let Tok::Letter(c, _) = *tok {
                if !names.contains(&c) {
                    names.push(c);
                }
            }
        }
    }
    let n_letters = names.len();
    names.extend((0..ell_rank).map(|e| generated_name(52 + e)));
    let id_of = |c: char| names.iter().position(|&n| n == c).unwrap_or(0);
    let mut resolved = Vec::with_capacity(terms.len());
    for (term, &width) in terms.iter().zip(&widths) {
        let mut labels = Vec::new();
        let mut positions = Vec::new();
        for tok in &term.toks {
            match *tok {
                Tok::Letter(c, pos) => {
                    labels.push(id_of(c));
                    positions.push(pos);
                }
                Tok::Ellipsis(pos) => {
                    labels.extend(n_letters + ell_rank - width..n_letters + ell_rank);
                    positions.extend(std::iter::repeat_n(pos, width));
                }
            }
        }
        resolved.push((labels, positions));
    }
    let mut sizes: Vec<usize> = Vec::new();
    let mut first_seen: Vec<(usize, usize)> = Vec::new(); // operand and position a size came from
    let mut counts: Vec<usize> = Vec::new();
    sizes.resize(names.len(), 0);
    first_seen.resize(names.len(), (usize::MAX, 0));
    counts.resize(names.len(), 0);
    for (i, ((labels, positions), shape)) in resolved.iter().zip(shapes).enumerate() {
        for (d, (&l, &pos)) in labels.iter().zip(positions).enumerate() {
            counts[l] += 1;
            let dim = shape[d];
            let (src_op, _) = first_seen[l];
            if src_op == usize::MAX {
                sizes[l] = dim;
                first_seen[l] = (i, pos);
                continue;
            }
            let within = labels[..d]
                .iter()
                .zip(&shape[..d])
                .find(|(&m, _)| m == l)
                .map(|(_, &s)| s);
            if let Some(prev) = within {
                if prev != dim {
                    return Err(err(
                        pos,
                        format!(
                            "index '{}' is repeated in operand {i} with sizes {prev} and {dim} (a diagonal needs equal sizes)",
                            names[l]
                        ),
                    ));
                }
            }
            if sizes[l] == dim || dim == 1 {
                continue;
            }
            if sizes[l] == 1 {
                sizes[l] = dim;
                first_seen[l] = (i, pos);
                continue;
            }
            let what = if l >= n_letters {
                "ellipsis dimension".to_string()
            } else {
                format!("index '{}'", names[l])
            };
            return Err(err(
                pos,
                format!(
                    "{what} has size {} in operand {} and size {dim} in operand {i}",
                    sizes[l], src_op
                ),
            ));
        }
    }
    let inputs: Vec<Vec<Label>> = resolved.into_iter().map(|(l, _)| l).collect();

    let output = match rhs {
        Some(rhs) => {
            let term = tokenize(rhs, &err, end)?;
            let mut output = Vec::new();
            for tok in &term.toks {
                match *tok {
                    Tok::Letter(c, pos) => {
                        let Some(id) = names[..n_letters].iter().position(|&n| n == c) else {
                            return Err(err(
                                pos,
                                format!("output index '{c}' does not appear in the inputs"),
                            ));
                        };
                        if output.contains(&id) {
                            return Err(err(pos, format!("output index '{c}' appears twice")));
                        }
                        output.push(id);
                    }
                    Tok::Ellipsis(_) => output.extend(n_letters..n_letters + ell_rank),
                }
            }
            if ell_rank > 0 && !term.has_ellipsis() {
                let pos = rhs.first().map_or(end, |&(p, _)| p);
                return Err(err(
                    pos,
                    format!(
                        "the inputs' '...' covers {ell_rank} dims but the output has no '...' (write '...' in the output, or name those dims)"
                    ),
                ));
            }
            output
        }
        None => {
            let mut once: Vec<Label> = (0..n_letters).filter(|&l| counts[l] == 1).collect();
            once.sort_by_key(|&l| names[l]);
            let mut output: Vec<Label> = (n_letters..n_letters + ell_rank).collect();
            output.extend(once);
            output
        }
    };
    Ok(Expr {
        equation: equation.to_string(),
        inputs,
        output,
        sizes,
        names,
    })
}

/// Splits one term into letters and at most one ellipsis.
fn tokenize(
    chars: &[(usize, char)],
    err: &impl Fn(usize, String) -> Error,
    end: usize,
) -> Result<Term> {
    let start = chars.first().map_or(end, |&(p, _)| p);
    let mut toks = Vec::new();
    let mut k = 0;
    while k < chars.len() {
        let (pos, c) = chars[k];
        if c.is_ascii_alphabetic() {
            toks.push(Tok::Letter(c, pos));
            k += 1;
        } else if c == '.' {
            let dots = chars[k..].iter().take(3).filter(|(_, d)| *d == '.').count();
            if dots < 3 {
                return Err(err(pos, "'.' must be part of an ellipsis '...'".into()));
            }
            if toks.iter().any(|t| matches!(t, Tok::Ellipsis(_))) {
                return Err(err(pos, "a term may hold only one '...'".into()));
            }
            toks.push(Tok::Ellipsis(pos));
            k += 3;
        } else {
            let hint = if c == '-' || c == '>' {
                " ('->' separates inputs from the output)"
            } else {
                " (indices are the letters a-z and A-Z)"
            };
            return Err(err(pos, format!("bad character '{c}'{hint}")));
        }
    }
    Ok(Term { start, toks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(equation: &str, shapes: &[&[usize]]) -> (usize, String) {
        match parse(equation, shapes) {
            Err(Error::Einsum { position, msg, .. }) => (position, msg),
            other => panic!("{equation}: expected an einsum error, got {other:?}"),
        }
    }

    #[test]
    fn implicit_output_is_labels_seen_once_in_ascii_order() {
        let e = parse("Ab,aB", &[&[2, 3], &[4, 5]]).unwrap();
        let out: String = e.term(&e.output);
        assert_eq!(out, "ABab");
        let e = parse("ii", &[&[3, 3]]).unwrap();
        assert!(e.output.is_empty());
    }

    #[test]
    fn ellipsis_dims_broadcast_right_aligned() {
        let e = parse("...ij,...jk->...ik", &[&[2, 1, 3, 4], &[5, 4, 2]]).unwrap();
        assert_eq!(e.shape_of(&e.output), vec![2, 5, 3, 2]);
        let e = parse("...ij,...jk", &[&[2, 1, 3, 4], &[5, 4, 2]]).unwrap();
        assert_eq!(e.shape_of(&e.output), vec![2, 5, 3, 2]);
    }

    #[test]
    fn errors_name_the_position_and_the_fault() {
        assert_eq!(position("ij,j#->i", &[&[2, 3], &[3]]).0, 4);
        let (p, msg) = position("ij,jk->ik", &[&[2, 3], &[4, 5]]);
        assert_eq!(p, 3);
        assert!(
            msg.contains("size 3 in operand 0 and size 4 in operand 1"),
            "{msg}"
        );
        let (p, msg) = position("ij,jk->iz", &[&[2, 3], &[3, 5]]);
        assert_eq!(p, 8);
        assert!(msg.contains("'z'"), "{msg}");
        let (_, msg) = position("ij,jk->ik", &[&[2, 3]]);
        assert!(msg.contains("2 subscript terms but 1 operands"), "{msg}");
        let (p, msg) = position("ij,jk->ik", &[&[2, 3], &[3, 5, 1]]);
        assert_eq!(p, 3);
        assert!(msg.contains("rank 3"), "{msg}");
        assert_eq!(position("i.j", &[&[2, 3]]).0, 1);
        assert_eq!(position("...i->i", &[&[2, 3]]).0, 6);
        assert!(position("ii->i", &[&[2, 3]]).1.contains("sizes 2 and 3"));
        assert!(position("ij->ii", &[&[2, 2]]).1.contains("twice"));
    }
}

//! einsum against a naive reference written here (one loop over every
//! combination of index values), on every expression of opt_einsum's own
//! test suite (`tests/test_contract.py`, sizes from its `testing.py`), in
//! f32 and f64, on contiguous and on strided operands; ellipsis and
//! broadcasting cases; path costs against opt_einsum's 'optimal' (fixture
//! from scripts/fixtures/einsum_paths.py); and the errors.

use ricci::{einsum, einsum_path, einsum_path_with, einsum_with, DType, Error, PathOptions};
use ricci::{Rng, Strategy, Tensor};

/// The expressions of opt_einsum's test_contract.py.
const OPT_EINSUM_TESTS: &[&str] = &[
    "a,->a",
    "ab,->ab",
    ",ab,->ab",
    ",,->",
    "a,ab,abc->abc",
    "a,b,ab->ab",
    "ea,fb,gc,hd,abcd->efgh",
    "ea,fb,abcd,gc,hd->efgh",
    "abcd,ea,fb,gc,hd->efgh",
    "acdf,jbje,gihb,hfac,gfac,gifabc,hfac",
    "cd,bdhe,aidb,hgca,gc,hgibcd,hgac",
    "abhe,hidj,jgba,hiab,gab",
    "bde,cdh,agdb,hica,ibd,hgicd,hiac",
    "chd,bde,agbc,hiad,hgc,hgi,hiad",
    "chd,bde,agbc,hiad,bdi,cgh,agdb",
    "bdhe,acad,hiab,agac,hibd",
    "ab,ab,c->",
    "ab,ab,c->c",
    "ab,ab,cd,cd->",
    "ab,ab,cd,cd->ac",
    "ab,ab,cd,cd->cd",
    "ab,ab,cd,cd,ef,ef->",
    "ab,cd,ef->abcdef",
    "ab,cd,ef->acdf",
    "ab,cd,de->abcde",
    "ab,cd,de->be",
    "ab,bcd,cd->abcd",
    "ab,bcd,cd->abd",
    "eb,cb,fb->cef",
    "dd,fb,be,cdb->cef",
    "bca,cdb,dbf,afc->",
    "dcc,fce,ea,dbf->ab",
    "fdf,cdd,ccd,afe->ae",
    "abcd,ad",
    "ed,fcd,ff,bcf->be",
    "baa,dcf,af,cde->be",
    "bd,db,eac->ace",
    "fff,fae,bef,def->abd",
    "efc,dbc,acf,fd->abe",
    "ab,ab",
    "ab,ba",
    "abc,abc",
    "abc,bac",
    "abc,cba",
    "ab,bc",
    "ab,cb",
    "ba,bc",
    "ba,cb",
    "abcd,cd",
    "abcd,ab",
    "abcd,cdef",
    "abcd,cdef->feba",
    "abcd,efdc",
    "aab,bc->ac",
    "ab,bcc->ac",
    "aab,bcc->ac",
    "baa,bcc->ac",
    "aab,ccb->ac",
    "aab,fa,df,ecc->bde",
    "ecb,fef,bad,ed->ac",
    "bcf,bbb,fbf,fc->",
    "bb,ff,be->e",
    "bcb,bb,fc,fff->",
    "fbb,dfd,fc,fc->",
    "afd,ba,cc,dc->bf",
    "adb,bc,fa,cfc->d",
    "bbd,bda,fc,db->acf",
    "dba,ead,cad->bce",
    "aef,fbc,dca->bde",
];

/// opt_einsum's default index sizes (testing.py: `_valid_chars`, `_sizes`).
fn default_size(c: char) -> usize {
    const CHARS: &str = "abcdefghijklmopqABC";
    const SIZES: [usize; 19] = [2, 3, 4, 5, 4, 3, 2, 6, 5, 4, 3, 2, 5, 7, 4, 3, 2, 3, 4];
    CHARS.find(c).map_or(3, |i| SIZES[i])
}

/// The naive reference: letters only (no ellipsis); the implicit output is
/// the letters seen once, sorted; a size-1 dim broadcasts. Returns the
/// output shape, the values and, per output element, the sum of |terms|
/// (the scale a rounding error is measured against).
fn naive(equation: &str, operands: &[(Vec<usize>, Vec<f64>)]) -> (Vec<usize>, Vec<f64>, Vec<f64>) {
    let (lhs, rhs) = match equation.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (equation, None),
    };
    let terms: Vec<Vec<char>> = lhs.split(',').map(|t| t.chars().collect()).collect();
    assert_eq!(terms.len(), operands.len(), "{equation}");
    let mut letters: Vec<char> = terms.iter().flatten().copied().collect();
    letters.sort_unstable();
    letters.dedup();
    let output: Vec<char> = match rhs {
        Some(r) => r.chars().collect(),
        None => letters
            .iter()
            .copied()
            .filter(|c| terms.iter().flatten().filter(|d| *d == c).count() == 1)
            .collect(),
    };
    let size: Vec<usize> = letters
        .iter()
        .map(|c| {
            terms
                .iter()
                .zip(operands)
                .flat_map(|(t, (shape, _))| t.iter().zip(shape).filter(|(d, _)| *d == c))
                .map(|(_, &s)| s)
                .max()
                .unwrap()
        })
        .collect();
    let pos = |c: &char| letters.iter().position(|d| d == c).unwrap();
    let out_shape: Vec<usize> = output.iter().map(|c| size[pos(c)]).collect();
    let out_len: usize = out_shape.iter().product();
    let (mut values, mut scale) = (vec![0.0; out_len], vec![0.0; out_len]);
    let total: usize = size.iter().product();
    let mut idx = vec![0usize; letters.len()];
    for _ in 0..total {
        let mut term = 1.0;
        for (t, (shape, data)) in terms.iter().zip(operands) {
            let mut flat = 0;
            for (c, &s) in t.iter().zip(shape) {
                flat = flat * s + if s == 1 { 0 } else { idx[pos(c)] };
            }
            term *= data[flat];
        }
        let mut o = 0;
        for (c, &s) in output.iter().zip(&out_shape) {
            o = o * s + idx[pos(c)];
        }
        values[o] += term;
        scale[o] += term.abs();
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < size[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    (out_shape, values, scale)
}

fn shapes_of(equation: &str, size: impl Fn(char) -> usize) -> Vec<Vec<usize>> {
    let lhs = equation.split("->").next().unwrap();
    lhs.split(',')
        .map(|t| t.chars().map(&size).collect())
        .collect()
}

fn random_operands(shapes: &[Vec<usize>], rng: &mut Rng) -> Vec<(Vec<usize>, Vec<f64>)> {
    shapes
        .iter()
        .map(|s| {
            let n: usize = s.iter().product();
            (
                s.clone(),
                (0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect(),
            )
        })
        .collect()
}

/// The operand as a tensor of `dtype`; `strided` stores it with its dims
/// reversed and hands out the permuted (non-contiguous) view.
fn tensor(shape: &[usize], data: &[f64], dtype: DType, strided: bool) -> Tensor {
    let t = Tensor::from_vec(data.to_vec(), shape)
        .unwrap()
        .to_dtype(dtype);
    if !strided || shape.len() < 2 {
        return t;
    }
    let rev: Vec<usize> = (0..shape.len()).rev().collect();
    let stored = t.permute(rev.clone()).unwrap().contiguous();
    let view = stored.permute(rev).unwrap();
    assert!(!view.is_contiguous() || shape.iter().filter(|&&d| d > 1).count() < 2);
    view
}

/// ricci's einsum (equation `ricci_eq`) against the naive reference
/// (`naive_eq`, letters only) on the same data.
fn check(ricci_eq: &str, naive_eq: &str, ops: &[(Vec<usize>, Vec<f64>)], options: &PathOptions) {
    let (shape, want, scale) = naive(naive_eq, ops);
    for dtype in [DType::F64, DType::F32] {
        for strided in [false, true] {
            let tensors: Vec<Tensor> = ops
                .iter()
                .map(|(s, d)| tensor(s, d, dtype, strided))
                .collect();
            let refs: Vec<&Tensor> = tensors.iter().collect();
            let got = einsum_with(ricci_eq, &refs, options)
                .unwrap_or_else(|e| panic!("{ricci_eq} ({dtype}): {e}"));
            assert_eq!(got.shape(), shape.as_slice(), "{ricci_eq} ({dtype})");
            assert_eq!(got.dtype(), dtype);
            let eps = if dtype == DType::F64 { 1e-14 } else { 1e-6 };
            for (k, (g, (w, s))) in got
                .to_vec_f64()
                .iter()
                .zip(want.iter().zip(&scale))
                .enumerate()
            {
                assert!(
                    (g - w).abs() <= 10.0 * eps * (s + 1.0),
                    "{ricci_eq} ({dtype}, strided {strided}) element {k}: {g} vs {w}"
                );
            }
        }
    }
}

#[test]
fn every_opt_einsum_test_expression_matches_the_naive_reference() {
    let mut rng = Rng::new(7);
    for equation in OPT_EINSUM_TESTS {
        let shapes = shapes_of(equation, default_size);
        let ops = random_operands(&shapes, &mut rng);
        check(equation, equation, &ops, &PathOptions::default());
    }
}

#[test]
fn greedy_paths_give_the_same_values() {
    let mut rng = Rng::new(8);
    let greedy = PathOptions {
        strategy: Strategy::Greedy,
        ..Default::default()
    };
    for equation in OPT_EINSUM_TESTS
        .iter()
        .filter(|e| e.split(',').count() >= 3)
    {
        let shapes = shapes_of(equation, default_size);
        let ops = random_operands(&shapes, &mut rng);
        check(equation, equation, &ops, &greedy);
    }
}

#[test]
fn ellipsis_and_size_one_broadcasting_match_the_reference() {
    // (ricci equation, the same with letters, shapes)
    let cases: &[(&str, &str, &[&[usize]])] = &[
        (
            "...ij,...jk->...ik",
            "xyij,yjk->xyik",
            &[&[2, 1, 3, 4], &[5, 4, 2]],
        ),
        (
            "...ij,...jk",
            "xyij,yjk->xyik",
            &[&[2, 5, 3, 4], &[5, 4, 2]],
        ),
        ("i...->...", "ixy->xy", &[&[3, 2, 4]]),
        ("...ii->...i", "xii->xi", &[&[2, 3, 3]]),
        (
            "ij...,jk...->ik...",
            "ijx,jkx->ikx",
            &[&[2, 3, 4], &[3, 5, 1]],
        ),
        ("...,...->...", "xy,xy->xy", &[&[3, 1], &[1, 4]]),
        (
            "b...d,b...d->b...",
            "bxd,bxd->bx",
            &[&[2, 3, 4], &[2, 3, 4]],
        ),
        ("...i,...i", "xi,xi->x", &[&[2, 5], &[2, 5]]),
        ("i,i->i", "i,i->i", &[&[1], &[3]]),
        ("ij,j->i", "ij,j->i", &[&[2, 1], &[3]]),
    ];
    let mut rng = Rng::new(9);
    for (eq, letters, shapes) in cases {
        let shapes: Vec<Vec<usize>> = shapes.iter().map(|s| s.to_vec()).collect();
        let ops = random_operands(&shapes, &mut rng);
        check(eq, letters, &ops, &PathOptions::default());
    }
}

#[test]
fn upper_and_lower_case_letters_are_distinct_indices() {
    let mut rng = Rng::new(10);
    let shapes = vec![vec![2, 3], vec![3, 4], vec![4, 2]];
    let ops = random_operands(&shapes, &mut rng);
    check("aB,BC,Ca->", "aB,BC,Ca->", &ops, &PathOptions::default());
    check("aA,Ab,ba", "aA,Ab,ba->", &ops, &PathOptions::default());
}

/// The fixture written by scripts/fixtures/einsum_paths.py.
#[derive(serde::Deserialize)]
struct PathFixture {
    cases: Vec<PathCase>,
}
#[derive(serde::Deserialize)]
struct PathCase {
    equation: String,
    shapes: Vec<Vec<usize>>,
    optimal_flops: u128,
    naive_flops: u128,
    optimal_path: Vec<Vec<usize>>,
}

#[test]
fn optimal_path_cost_equals_opt_einsum_optimal() {
    let text = include_str!("fixtures/einsum_paths.json");
    let fixture: PathFixture = serde_json::from_str(text).unwrap();
    assert!(fixture.cases.len() >= 30);
    for case in &fixture.cases {
        let plan = einsum_path(&case.equation, &case.shapes).unwrap();
        assert_eq!(plan.strategy, Strategy::Optimal);
        assert_eq!(plan.flops, case.optimal_flops, "{}", case.equation);
        assert_eq!(plan.naive_flops, case.naive_flops, "{}", case.equation);
        // The path is a valid linear path: one fewer step than operands,
        // positions inside the shrinking list, step costs adding up.
        assert_eq!(plan.path.len(), case.shapes.len() - 1);
        for (k, step) in plan.path.iter().enumerate() {
            let len = case.shapes.len() - k;
            assert!(step.len() == 2 && step[0] < step[1] && step[1] < len);
        }
        let sum: u128 = plan.steps.iter().map(|s| s.flops).sum();
        assert_eq!(sum, plan.flops);
        // Greedy never beats the optimum.
        let greedy = PathOptions {
            strategy: Strategy::Greedy,
            ..Default::default()
        };
        let g = einsum_path_with(&case.equation, &case.shapes, &greedy).unwrap();
        assert!(g.flops >= plan.flops, "{}", case.equation);
        assert_eq!(case.optimal_path.len(), plan.path.len());
    }
}

#[test]
fn memory_limit_is_respected_or_refused() {
    let shapes = [vec![8, 2], vec![2, 8], vec![8, 2], vec![2, 8]];
    let free = einsum_path("ab,bc,cd,de->ae", &shapes).unwrap();
    assert!(free.largest_intermediate > 4);
    for limit in [16u128, 64] {
        let opts = PathOptions {
            memory_limit: Some(limit),
            ..Default::default()
        };
        let p = einsum_path_with("ab,bc,cd,de->ae", &shapes, &opts).unwrap();
        // Every step but the last (the output) fits.
        for step in &p.steps[..p.steps.len() - 1] {
            assert!(step.shape.iter().product::<usize>() as u128 <= limit);
        }
    }
    let tight = PathOptions {
        memory_limit: Some(3),
        ..Default::default()
    };
    let err = einsum_path_with("ab,bc,cd,de->ae", &shapes, &tight).unwrap_err();
    assert!(err.to_string().contains("memory limit of 3"), "{err}");
}

#[test]
fn many_operands_switch_to_greedy_and_stay_correct() {
    // A ring of 14 matrices: trace of the product.
    let n = 14;
    let letters: Vec<char> = ('a'..='z').collect();
    let terms: Vec<String> = (0..n)
        .map(|i| format!("{}{}", letters[i], letters[(i + 1) % n]))
        .collect();
    let equation = format!("{}->", terms.join(","));
    let mut rng = Rng::new(11);
    let mats: Vec<Tensor> = (0..n)
        .map(|_| Tensor::randn(&[3, 3], DType::F64, &mut rng))
        .collect();
    let refs: Vec<&Tensor> = mats.iter().collect();
    let shapes: Vec<&[usize]> = mats.iter().map(|m| m.shape()).collect();
    let plan = einsum_path(&equation, &shapes).unwrap();
    assert_eq!(plan.strategy, Strategy::Greedy);
    let got = einsum(&equation, &refs).unwrap().to_f64().unwrap();
    let mut product = mats[0].clone();
    for m in &mats[1..] {
        product = product.matmul(m).unwrap();
    }
    let trace = product
        .diagonal(0, 0, 1)
        .unwrap()
        .sum_all()
        .to_f64()
        .unwrap();
    assert!(
        (got - trace).abs() < 1e-10 * (1.0 + trace.abs()),
        "{got} vs {trace}"
    );
}

fn einsum_error(equation: &str, shapes: &[&[usize]]) -> (usize, String) {
    let tensors: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::zeros(s, DType::F32))
        .collect();
    let refs: Vec<&Tensor> = tensors.iter().collect();
    match einsum(equation, &refs) {
        Err(Error::Einsum {
            equation: e,
            position,
            msg,
        }) => {
            assert_eq!(e, equation);
            (position, msg)
        }
        other => panic!("{equation}: expected an einsum error, got {other:?}"),
    }
}

#[test]
fn errors_give_equation_position_and_reason() {
    let (p, msg) = einsum_error("ij,j1->i", &[&[2, 3], &[3, 1]]);
    assert_eq!(p, 4);
    assert!(msg.contains("bad character '1'"), "{msg}");
    let (p, msg) = einsum_error("bhqd,bhkd->bhqk", &[&[2, 4, 8, 16], &[2, 4, 8, 32]]);
    assert_eq!(p, 8);
    assert!(
        msg.contains("index 'd' has size 16 in operand 0 and size 32 in operand 1"),
        "{msg}"
    );
    let (p, msg) = einsum_error("ij,jk->ix", &[&[2, 3], &[3, 4]]);
    assert_eq!(p, 8);
    assert!(msg.contains("'x' does not appear in the inputs"), "{msg}");
    let (_, msg) = einsum_error("ij,jk,kl->il", &[&[2, 3], &[3, 4]]);
    assert!(msg.contains("3 subscript terms but 2 operands"), "{msg}");
    let (p, msg) = einsum_error("ij,jk->ik", &[&[2, 3], &[3]]);
    assert_eq!(p, 3);
    assert!(
        msg.contains("rank 1") && msg.contains("name 2 dims"),
        "{msg}"
    );
    let full = einsum("ij->ji", &[&Tensor::zeros(&[2, 3], DType::F32)]).unwrap();
    assert_eq!(full.shape(), &[3, 2]);
    let a = Tensor::zeros(&[2], DType::F32);
    let b = Tensor::zeros(&[2], DType::F64);
    let err = einsum("i,i->", &[&a, &b]).unwrap_err();
    assert!(
        matches!(err, Error::DTypeMismatch { op: "einsum", .. }),
        "{err}"
    );
    // The Display form names the equation and the position.
    let err = einsum(
        "ij,j#->i",
        &[
            &Tensor::zeros(&[2, 3], DType::F32),
            &Tensor::zeros(&[3, 1], DType::F32),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("einsum 'ij,j#->i' at position 4: bad character '#'"),
        "{err}"
    );
}

#[test]
fn explain_steps_describe_each_contraction() {
    let p = einsum_path("ij,jk,kl->il", &[[64, 8], [8, 64], [64, 2]]).unwrap();
    assert_eq!(p.path, vec![vec![1, 2], vec![0, 1]]);
    assert_eq!(p.steps[0].equation, "jk,kl->jl");
    assert_eq!(p.steps[0].shape, vec![8, 2]);
    // opt_einsum: jkl with an inner product: 8*64*2*2, then ijl: 64*8*2*2.
    assert_eq!(p.steps[0].flops, 2048);
    assert_eq!(p.flops, 4096);
    assert_eq!(p.naive_flops, 64 * 8 * 64 * 2 * 3);
    let text = p.to_string();
    assert!(
        text.contains("jk,kl->jl") && text.contains("ij,jl->il"),
        "{text}"
    );
}

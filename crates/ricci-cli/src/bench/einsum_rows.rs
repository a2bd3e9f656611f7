//! `ricci bench --filter einsum`: AI-shaped einsum expressions, and the
//! planner's time per call. `bench/einsum_compare.py` runs the same rows in
//! numpy (`np.einsum(..., optimize='optimal')`) and PyTorch (`torch.einsum`).
//!
//! A row's shape string is `EQUATION SIZES`, e.g.
//! `bhqd,bhkd->bhqk b=8,h=12,q=128,k=128,d=64`, which the comparison script
//! parses to build the same inputs. Names ending in `_t` take their first
//! operand as a transposed view (last two dims swapped in memory). Work is
//! the path's cost in opt_einsum's model (about 2 flops per multiply-add),
//! so GFLOP/s compare between rows of one expression only.
//!
//! `einsum_plan_*` rows time `einsum_path` alone (parse + plan + describe):
//! the planning cost every `einsum` call pays.

use ricci::{einsum, einsum_path, DType, Tensor};

use super::suite::{Input, RowSpec, Work};

/// Evaluates `equation` on the row's inputs.
fn run(equation: &str, x: &[Tensor]) -> ricci::Result<Tensor> {
    let refs: Vec<&Tensor> = x.iter().collect();
    einsum(equation, &refs)
}

/// Plans `equation` for the shapes in `sizes`; the flops as a scalar.
fn plan(equation: &str, sizes: &str) -> ricci::Result<Tensor> {
    let shapes = shapes(equation, sizes);
    Ok(Tensor::scalar(einsum_path(equation, &shapes)?.flops as f64))
}

/// `b=8,h=12` -> size of each letter.
fn size_of(sizes: &str, c: char) -> usize {
    sizes
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.chars().eq(std::iter::once(c)))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1)
}

/// Operand shapes of `equation` (letters only) for `sizes`.
fn shapes(equation: &str, sizes: &str) -> Vec<Vec<usize>> {
    let lhs = equation.split("->").next().unwrap_or("");
    lhs.split(',')
        .map(|t| t.chars().map(|c| size_of(sizes, c)).collect())
        .collect()
}

/// A row evaluating `equation`; with `transposed`, the first operand is a
/// transposed view.
fn row(
    name: &'static str,
    equation: &'static str,
    sizes: &'static str,
    transposed: bool,
    op: fn(&[Tensor]) -> ricci::Result<Tensor>,
) -> RowSpec {
    let shapes = shapes(equation, sizes);
    let flops = einsum_path(equation, &shapes).map_or(0, |p| p.flops) as f64;
    let inputs = shapes
        .into_iter()
        .enumerate()
        .map(|(i, mut shape)| {
            let t = transposed && i == 0 && shape.len() >= 2;
            if t {
                let r = shape.len();
                shape.swap(r - 2, r - 1);
            }
            Input {
                shape,
                transposed: t,
                grad: false,
            }
        })
        .collect();
    RowSpec {
        name,
        dtype: DType::F32,
        shape: format!("{equation} {sizes}"),
        work: Work::Flops(flops),
        inputs,
        op,
    }
}

/// A row timing the planner alone.
fn plan_row(
    name: &'static str,
    equation: &'static str,
    sizes: &'static str,
    op: fn(&[Tensor]) -> ricci::Result<Tensor>,
) -> RowSpec {
    RowSpec {
        name,
        dtype: DType::F32,
        shape: format!("{equation} {sizes}"),
        work: Work::Time,
        inputs: Vec::new(),
        op,
    }
}

/// Declares a row whose op evaluates the same equation it is described by.
macro_rules! einsum_row {
    ($name:literal, $eq:literal, $sizes:literal) => {
        row($name, $eq, $sizes, false, |x| run($eq, x))
    };
    ($name:literal, $eq:literal, $sizes:literal, transposed) => {
        row($name, $eq, $sizes, true, |x| run($eq, x))
    };
}

macro_rules! plan_row {
    ($name:literal, $eq:literal, $sizes:literal) => {
        plan_row($name, $eq, $sizes, |_| plan($eq, $sizes))
    };
}

/// The einsum rows, in the order they print.
pub fn rows() -> Vec<RowSpec> {
    vec![
        // Attention: scores and apply (batch 8, 12 heads, 128 tokens, head dim 64).
        einsum_row!(
            "einsum_attn_scores",
            "bhqd,bhkd->bhqk",
            "b=8,h=12,q=128,k=128,d=64"
        ),
        einsum_row!(
            "einsum_attn_apply",
            "bhqk,bhkd->bhqd",
            "b=8,h=12,q=128,k=128,d=64"
        ),
        // Bilinear form x_b^T W y_b for a batch.
        einsum_row!("einsum_bilinear", "bi,ij,bj->b", "b=512,i=512,j=512"),
        // Tucker and CP reconstructions.
        einsum_row!(
            "einsum_tucker",
            "abc,ia,jb,kc->ijk",
            "a=16,b=16,c=16,i=128,j=128,k=128"
        ),
        einsum_row!("einsum_cp", "ir,jr,kr->ijk", "i=128,j=128,k=128,r=32"),
        // Four MPS sites (bond 64, physical 16) to the amplitude tensor.
        einsum_row!(
            "einsum_mps_chain",
            "ia,ajb,bkc,cl->ijkl",
            "i=16,j=16,k=16,l=16,a=64,b=64,c=64"
        ),
        // A 4-operand matrix chain whose order matters.
        einsum_row!(
            "einsum_chain4",
            "ij,jk,kl,lm->im",
            "i=512,j=64,k=512,l=64,m=512"
        ),
        // Transposes: a contraction on a transposed operand, and a pure permutation.
        einsum_row!(
            "einsum_matmul_t",
            "ji,jk->ik",
            "i=1024,j=1024,k=1024",
            transposed
        ),
        einsum_row!("einsum_permute", "bhqd->bqhd", "b=8,h=12,q=128,d=64"),
        // Broadcast products and reductions.
        einsum_row!("einsum_bcast_mul", "bij,j->bij", "b=64,i=256,j=256"),
        einsum_row!("einsum_batched_matvec", "bij,bj->bi", "b=512,i=256,j=256"),
        einsum_row!("einsum_batched_dot", "bi,bi->b", "b=4096,i=1024"),
        einsum_row!("einsum_outer", "i,j->ij", "i=4096,j=4096"),
        einsum_row!("einsum_trace", "bii->b", "b=64,i=512"),
        einsum_row!("einsum_sum", "ijk->i", "i=256,j=256,k=256"),
        // Planning alone: 2, 4, 8 (a fixture network), 10 and 12 operands.
        plan_row!(
            "einsum_plan_2",
            "bhqd,bhkd->bhqk",
            "b=8,h=12,q=128,k=128,d=64"
        ),
        plan_row!(
            "einsum_plan_4",
            "abc,ia,jb,kc->ijk",
            "a=16,b=16,c=16,i=128,j=128,k=128"
        ),
        plan_row!(
            "einsum_plan_8",
            "kjadfl,bqag,iclbpn,ekc,din,oje,fmh,mhg->oqp",
            "a=3,b=5,c=4,d=6,e=2,f=7,g=3,h=5,i=4,j=6,k=3,l=2,m=5,n=4,o=3,p=6,q=2"
        ),
        plan_row!(
            "einsum_plan_10",
            "abk,bc,cdl,dem,ef,fgk,gh,hil,ij,jam->",
            "a=8,b=7,c=6,d=5,e=8,f=7,g=6,h=5,i=8,j=7,k=4,l=3,m=2"
        ),
        plan_row!(
            "einsum_plan_12",
            "abk,bc,cdl,dem,ef,fgk,gh,hil,ij,jnm,no,oa->",
            "a=8,b=7,c=6,d=5,e=8,f=7,g=6,h=5,i=8,j=7,k=4,l=3,m=2,n=6,o=5"
        ),
    ]
}

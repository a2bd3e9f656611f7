//! Gradients against central finite differences in f64, first order for
//! every differentiable op and second order (Hessian-vector products
//! against finite differences of the gradient) for the ops that losses and
//! attention are built from.
//!
//! Each row of the table is an op with inputs drawn from its valid domain.
//! The check is along random directions: for a scalar
//! `L(x) = sum(w * f(x))` with a fixed random `w`, autodiff's `<dL/dx, v>`
//! must equal `(L(x + h v) - L(x - h v)) / 2h`, by reverse mode and by
//! forward mode (`jvp`); at second order, by reverse over reverse and by
//! reverse over forward.

use ricci::autograd::{
    forward_tangents, grad, gradcheck, hessian, hvp, jacobian, jvp, vjp, GradcheckOptions,
};
use ricci::{linear, DType, Result, Rng, Tensor};

type Op = fn(&[Tensor]) -> Result<Tensor>;

/// Input `i` of a row: a shape and a domain `(lo, hi)` to draw it from.
struct Row {
    name: &'static str,
    inputs: &'static [(&'static [usize], f64, f64)],
    f: Op,
    second_order: bool,
}

fn rand_in(shape: &[usize], lo: f64, hi: f64, rng: &mut Rng) -> Tensor {
    Tensor::uniform(shape, lo, hi, DType::F64, rng)
}

/// The row's op against finite differences (first order, and second
/// order when the row asks), through `ricci::autograd::gradcheck`.
fn check_row(row: &Row, rng: &mut Rng) {
    let xs: Vec<Tensor> = row
        .inputs
        .iter()
        .map(|&(s, lo, hi)| rand_in(s, lo, hi, rng))
        .collect();
    let opts = GradcheckOptions {
        second_order: row.second_order,
        seed: rng.next_u64(),
        ..GradcheckOptions::default()
    };
    gradcheck(row.f, &xs, &opts).unwrap_or_else(|e| panic!("{}: {e}", row.name));
}

fn ids(v: &[usize], shape: &[usize]) -> Tensor {
    Tensor::from_indices(v, shape, DType::F64).unwrap()
}

/// Layer norm written from primitives (mean, var, rsqrt, broadcasting).
fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<Tensor> {
    let mu = x.mean(-1, true)?;
    let var = x.var_correction(-1, 0, true)?;
    x.sub(&mu)?
        .mul(&var.add_scalar(1e-5).rsqrt())?
        .mul(gamma)?
        .add(beta)
}

const S34: &[usize] = &[3, 4];
const ROWS: &[Row] = &[
    Row {
        name: "neg",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| Ok(x[0].neg()),
        second_order: false,
    },
    Row {
        name: "exp",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| Ok(x[0].exp()),
        second_order: true,
    },
    Row {
        name: "log",
        inputs: &[(S34, 0.5, 3.0)],
        f: |x| Ok(x[0].log()),
        second_order: true,
    },
    Row {
        name: "sqrt",
        inputs: &[(S34, 0.5, 3.0)],
        f: |x| Ok(x[0].sqrt()),
        second_order: false,
    },
    Row {
        name: "rsqrt",
        inputs: &[(S34, 0.5, 3.0)],
        f: |x| Ok(x[0].rsqrt()),
        second_order: true,
    },
    Row {
        name: "recip",
        inputs: &[(S34, 0.5, 3.0)],
        f: |x| Ok(x[0].recip()),
        second_order: false,
    },
    Row {
        name: "square",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| Ok(x[0].square()),
        second_order: false,
    },
    Row {
        name: "sin",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| Ok(x[0].sin()),
        second_order: false,
    },
    Row {
        name: "cos",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| Ok(x[0].cos()),
        second_order: false,
    },
    Row {
        name: "tanh",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| Ok(x[0].tanh()),
        second_order: true,
    },
    Row {
        name: "abs",
        inputs: &[(S34, 0.2, 2.0)],
        f: |x| Ok(x[0].abs()),
        second_order: false,
    },
    Row {
        name: "sigmoid",
        inputs: &[(S34, -3.0, 3.0)],
        f: |x| Ok(x[0].sigmoid()),
        second_order: true,
    },
    Row {
        name: "relu",
        inputs: &[(S34, 0.1, 2.0)],
        f: |x| x[0].neg().relu().add(&x[0].relu()),
        second_order: false,
    },
    Row {
        name: "gelu",
        inputs: &[(S34, -3.0, 3.0)],
        f: |x| Ok(x[0].gelu()),
        second_order: true,
    },
    Row {
        name: "gelu_tanh",
        inputs: &[(S34, -3.0, 3.0)],
        f: |x| Ok(x[0].gelu_tanh()),
        second_order: true,
    },
    Row {
        name: "erf",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| Ok(x[0].erf()),
        second_order: false,
    },
    Row {
        name: "powf",
        inputs: &[(S34, 0.5, 2.0)],
        f: |x| Ok(x[0].powf(2.5)),
        second_order: false,
    },
    Row {
        name: "clamp",
        inputs: &[(S34, -0.9, 0.9)],
        f: |x| x[0].clamp(-1.0, 1.0),
        second_order: false,
    },
    Row {
        name: "scalar ops",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| {
            Ok(x[0]
                .add_scalar(1.0)
                .mul_scalar(3.0)
                .div_scalar(2.0)
                .rsub_scalar(1.0)
                .affine(2.0, 1.0))
        },
        second_order: false,
    },
    Row {
        name: "add broadcast",
        inputs: &[(S34, -2.0, 2.0), (&[4], -2.0, 2.0)],
        f: |x| x[0].add(&x[1]),
        second_order: false,
    },
    Row {
        name: "sub broadcast",
        inputs: &[(&[3, 1], -2.0, 2.0), (&[2, 1, 4], -2.0, 2.0)],
        f: |x| x[0].sub(&x[1]),
        second_order: false,
    },
    Row {
        name: "mul broadcast",
        inputs: &[(S34, -2.0, 2.0), (&[3, 1], -2.0, 2.0)],
        f: |x| x[0].mul(&x[1]),
        second_order: true,
    },
    Row {
        name: "div",
        inputs: &[(S34, -2.0, 2.0), (&[4], 0.5, 2.0)],
        f: |x| x[0].div(&x[1]),
        second_order: true,
    },
    Row {
        name: "pow",
        inputs: &[(S34, 0.5, 2.0), (S34, -1.5, 1.5)],
        f: |x| x[0].pow(&x[1]),
        second_order: true,
    },
    Row {
        name: "maximum",
        inputs: &[(S34, -2.0, 2.0), (S34, -2.0, 2.0)],
        f: |x| x[0].maximum(&x[1]),
        second_order: false,
    },
    Row {
        name: "minimum",
        inputs: &[(S34, -2.0, 2.0), (S34, -2.0, 2.0)],
        f: |x| x[0].minimum(&x[1]),
        second_order: false,
    },
    Row {
        name: "where",
        inputs: &[(S34, -2.0, 2.0), (&[4], -2.0, 2.0)],
        f: |x| Tensor::where_(&x[0].gt_scalar(0.0), &x[0], &x[1]),
        second_order: false,
    },
    Row {
        name: "sum",
        inputs: &[(&[2, 3, 4], -2.0, 2.0)],
        f: |x| x[0].sum([0, 2], false),
        second_order: true,
    },
    Row {
        name: "mean",
        inputs: &[(&[2, 3, 4], -2.0, 2.0)],
        f: |x| x[0].mean(1, true),
        second_order: true,
    },
    Row {
        name: "var",
        inputs: &[(&[2, 3, 4], -2.0, 2.0)],
        f: |x| x[0].var(-1, false),
        second_order: true,
    },
    Row {
        name: "std",
        inputs: &[(&[2, 3, 4], -2.0, 2.0)],
        f: |x| x[0].std([0, 1], false),
        second_order: false,
    },
    Row {
        name: "norm",
        inputs: &[(&[2, 3, 4], 0.2, 2.0)],
        f: |x| x[0].norm(3.0, 1, false),
        second_order: false,
    },
    Row {
        name: "max",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| x[0].max(1, false),
        second_order: false,
    },
    Row {
        name: "min",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| x[0].min(0, true),
        second_order: false,
    },
    Row {
        name: "logsumexp",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| x[0].logsumexp(1, false),
        second_order: true,
    },
    Row {
        name: "softmax",
        inputs: &[(&[2, 3, 4], -2.0, 2.0)],
        f: |x| x[0].softmax(-1),
        second_order: true,
    },
    Row {
        name: "softmax dim 0",
        inputs: &[(S34, -2.0, 2.0)],
        f: |x| x[0].softmax(0),
        second_order: false,
    },
    Row {
        name: "log_softmax",
        inputs: &[(&[2, 3, 4], -2.0, 2.0)],
        f: |x| x[0].log_softmax(1),
        second_order: true,
    },
    Row {
        name: "matmul",
        inputs: &[(S34, -1.0, 1.0), (&[4, 5], -1.0, 1.0)],
        f: |x| x[0].matmul(&x[1]),
        second_order: true,
    },
    Row {
        name: "matmul batched broadcast",
        inputs: &[(&[2, 1, 3, 4], -1.0, 1.0), (&[3, 4, 2], -1.0, 1.0)],
        f: |x| x[0].matmul(&x[1]),
        second_order: false,
    },
    Row {
        name: "matmul vector",
        inputs: &[(&[4], -1.0, 1.0), (&[4, 5], -1.0, 1.0)],
        f: |x| x[0].matmul(&x[1]),
        second_order: false,
    },
    Row {
        name: "linear",
        inputs: &[
            (&[2, 3, 4], -1.0, 1.0),
            (&[5, 4], -1.0, 1.0),
            (&[5], -1.0, 1.0),
        ],
        f: |x| linear(&x[0], &x[1], Some(&x[2])),
        second_order: true,
    },
    Row {
        name: "vecdot",
        inputs: &[(&[2, 3, 5], -1.0, 1.0), (&[2, 3, 5], -1.0, 1.0)],
        f: |x| x[0].vecdot(&x[1]),
        second_order: true,
    },
    Row {
        name: "vecdot of a transposed view, and broadcast",
        inputs: &[(&[5, 3], -1.0, 1.0), (&[2, 3, 5], -1.0, 1.0)],
        f: |x| x[0].t()?.vecdot(&x[1]),
        second_order: true,
    },
    Row {
        // Both operands stored transposed: their gradients take the
        // transposed-layout path of matmul's VJP.
        name: "matmul of transposed views, batched",
        inputs: &[(&[2, 4, 3], -1.0, 1.0), (&[2, 5, 4], -1.0, 1.0)],
        f: |x| x[0].t()?.matmul(&x[1].t()?),
        second_order: true,
    },
    Row {
        name: "reshape permute transpose",
        inputs: &[(&[2, 3, 4], -1.0, 1.0)],
        f: |x| {
            x[0].permute([2, 0, 1])?
                .reshape([4, 6])?
                .t()?
                .transpose(0, 1)?
                .exp()
                .contiguous()
                .flatten_all()
                .unsqueeze(0)?
                .squeeze(0)
        },
        second_order: false,
    },
    Row {
        name: "narrow slice",
        inputs: &[(&[5, 6], -1.0, 1.0)],
        f: |x| Ok(x[0].narrow(0, 1, 3)?.slice(1, 1, 6, 2)?.exp()),
        second_order: false,
    },
    Row {
        name: "broadcast_to expand",
        inputs: &[(&[3, 1], -1.0, 1.0)],
        f: |x| x[0].broadcast_to(&[2, 3, 4])?.mul(&x[0].expand([3, 4])?),
        second_order: false,
    },
    Row {
        name: "cat stack split",
        inputs: &[(S34, -1.0, 1.0), (&[3, 2], -1.0, 1.0)],
        f: |x| {
            let c = Tensor::cat(&[&x[0], &x[1]], 1)?;
            let parts = c.split(4, 1)?;
            Tensor::stack(&[&parts[0].sin(), &parts[0].cos()], 0)?.add(&parts[1].sum_all())
        },
        second_order: false,
    },
    Row {
        name: "diagonal",
        inputs: &[(&[3, 4, 5], -1.0, 1.0)],
        f: |x| {
            x[0].diagonal(1, 0, 2)?
                .exp()
                .add(&x[0].diagonal(-1, 2, 1)?.sin().t()?)
        },
        second_order: true,
    },
    Row {
        name: "pad",
        inputs: &[(S34, -1.0, 1.0)],
        f: |x| Ok(x[0].pad(&[(1, 0), (2, 1)], 0.5)?.exp()),
        second_order: false,
    },
    Row {
        name: "index_select",
        inputs: &[(&[4, 3], -1.0, 1.0)],
        f: |x| Ok(x[0].index_select(0, &ids(&[2, 0, 2], &[3]))?.exp()),
        second_order: true,
    },
    Row {
        name: "embedding",
        inputs: &[(&[5, 3], -1.0, 1.0)],
        f: |x| Ok(x[0].embedding(&ids(&[1, 4, 1, 0], &[2, 2]))?.tanh()),
        second_order: true,
    },
    Row {
        name: "gather",
        inputs: &[(S34, -1.0, 1.0)],
        f: |x| Ok(x[0].gather(1, &ids(&[0, 3, 3, 1, 2, 2], &[3, 2]))?.exp()),
        second_order: true,
    },
    Row {
        name: "scatter_add",
        inputs: &[(S34, -1.0, 1.0), (&[3, 2], -1.0, 1.0)],
        f: |x| {
            Ok(x[0]
                .scatter_add(1, &ids(&[0, 3, 3, 3, 2, 1], &[3, 2]), &x[1])?
                .exp())
        },
        second_order: false,
    },
    Row {
        name: "masked_fill tril",
        inputs: &[(&[4, 4], -1.0, 1.0)],
        f: |x| {
            x[0].masked_fill(&Tensor::ones(&[4, 4], DType::F64).triu(1)?, -1e9)?
                .softmax(-1)?
                .add(&x[0].tril(0)?)
        },
        second_order: false,
    },
    Row {
        name: "layer norm",
        inputs: &[(&[2, 5], -2.0, 2.0), (&[5], 0.5, 1.5), (&[5], -1.0, 1.0)],
        f: |x| layer_norm(&x[0], &x[1], &x[2]),
        second_order: true,
    },
    Row {
        name: "einsum matmul-like",
        inputs: &[(S34, -1.0, 1.0), (&[4, 2], -1.0, 1.0)],
        f: |x| Ok(ricci::einsum("ij,jk->ik", &[&x[0], &x[1]])?.tanh()),
        second_order: true,
    },
    Row {
        name: "einsum attention scores",
        inputs: &[(&[2, 2, 3, 4], -1.0, 1.0), (&[2, 2, 5, 4], -1.0, 1.0)],
        f: |x| Ok(ricci::einsum("bhqd,bhkd->bhqk", &[&x[0], &x[1]])?.tanh()),
        second_order: true,
    },
    Row {
        name: "einsum trace and diagonal",
        inputs: &[(&[4, 4], -1.0, 1.0), (&[2, 3, 3], -1.0, 1.0)],
        f: |x| {
            let trace = ricci::einsum("ii", &[&x[0]])?;
            Ok(ricci::einsum("ijj->i", &[&x[1]])?.mul(&trace)?.tanh())
        },
        second_order: true,
    },
    Row {
        name: "einsum outer product",
        inputs: &[(&[3], -1.0, 1.0), (&[4], -1.0, 1.0)],
        f: |x| Ok(ricci::einsum("i,j->ij", &[&x[0], &x[1]])?.tanh()),
        second_order: true,
    },
    Row {
        name: "einsum 4-operand chain",
        inputs: &[
            (S34, -1.0, 1.0),
            (&[4, 2], -1.0, 1.0),
            (&[2, 5], -1.0, 1.0),
            (&[5, 3], -1.0, 1.0),
        ],
        f: |x| Ok(ricci::einsum("ab,bc,cd,de->ae", &[&x[0], &x[1], &x[2], &x[3]])?.tanh()),
        second_order: true,
    },
    Row {
        name: "einsum Gram (one input twice) with ellipsis",
        inputs: &[(&[2, 3, 4], -1.0, 1.0)],
        f: |x| ricci::einsum("...ij,...ik->...jk", &[&x[0], &x[0]]),
        second_order: true,
    },
    Row {
        name: "layer_norm (fused) with weight and bias",
        inputs: &[(&[2, 5], -2.0, 2.0), (&[5], 0.5, 1.5), (&[5], -1.0, 1.0)],
        f: |x| x[0].layer_norm(Some(&x[1]), Some(&x[2]), 1e-5),
        second_order: true,
    },
    Row {
        name: "layer_norm (fused) of [2, 3, 4], no affine",
        inputs: &[(&[2, 3, 4], -2.0, 2.0)],
        f: |x| x[0].layer_norm(None, None, 1e-5),
        second_order: true,
    },
    Row {
        name: "layer_norm (fused) weight only, transposed input",
        inputs: &[(&[4, 3], -2.0, 2.0), (&[4], 0.5, 1.5)],
        f: |x| x[0].t()?.layer_norm(Some(&x[1]), None, 1e-3),
        second_order: true,
    },
    Row {
        name: "layer_norm (fused) bias only",
        inputs: &[(&[3, 4], -2.0, 2.0), (&[4], -1.0, 1.0)],
        f: |x| Ok(x[0].layer_norm(None, Some(&x[1]), 1e-5)?.exp()),
        second_order: true,
    },
];

#[test]
fn every_op_matches_finite_differences_first_and_second_order() {
    let mut rng = Rng::new(2024);
    // to_dtype goes through f32, below finite differences' resolution:
    // `to_dtype_passes_the_gradient_through` checks it with a looser tolerance.
    for row in ROWS {
        check_row(row, &mut rng);
    }
}

#[test]
fn linear_gives_its_weight_a_contiguous_gradient() {
    // `linear` multiplies by the view `w.t()`; the gradient of `w` must come
    // back contiguous (as PyTorch's), since optimizers and Hessian-vector
    // products read it elementwise.
    let mut rng = Rng::new(5);
    let x = rand_in(&[6, 4], -1.0, 1.0, &mut rng);
    let w = rand_in(&[3, 4], -1.0, 1.0, &mut rng).set_requires_grad(true);
    let loss = linear(&x, &w, None).unwrap().square().sum_all();
    let g = ricci::autograd::grad_of(&loss, &[&w], None, false)
        .unwrap()
        .remove(0);
    assert!(g.is_contiguous(), "strides {:?}", g.stride());
    // d/dw sum((x wᵀ)²) = 2 (x wᵀ)ᵀ x.
    let y = x.matmul(&w.detach().t().unwrap()).unwrap();
    let want = y.t().unwrap().matmul(&x).unwrap().mul_scalar(2.0);
    for (a, b) in g
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .zip(want.to_vec::<f64>().unwrap())
    {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}

#[test]
fn vecdot_equals_product_and_sum() {
    // Shapes that exercise the 32-lane blocks, their remainder and the
    // 1024-element block boundary; a transposed (copied) operand; one long
    // row (split across threads when there are two).
    let mut rng = Rng::new(11);
    for (shape, dtype) in [
        (vec![7, 45], DType::F64),
        (vec![3, 1030], DType::F32),
        (vec![40_000], DType::F64),
        (vec![2, 0], DType::F32),
    ] {
        let x = Tensor::uniform(&shape, -1.0, 1.0, dtype, &mut rng);
        let y = Tensor::uniform(&shape, -1.0, 1.0, dtype, &mut rng);
        let got = x.vecdot(&y).unwrap();
        let want = x.mul(&y).unwrap().sum(-1, false).unwrap();
        assert_eq!(got.shape(), want.shape());
        let tol = if dtype == DType::F32 { 1e-4 } else { 1e-12 };
        for (g, w) in got.to_vec_f64().iter().zip(want.to_vec_f64()) {
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "{shape:?}: {g} vs {w}"
            );
        }
    }
    let a = Tensor::uniform(&[6, 4], -1.0, 1.0, DType::F64, &mut rng);
    let b = Tensor::uniform(&[4, 6], -1.0, 1.0, DType::F64, &mut rng);
    let got = a.t().unwrap().vecdot(&b).unwrap().to_vec::<f64>().unwrap();
    let want = a
        .t()
        .unwrap()
        .contiguous()
        .mul(&b)
        .unwrap()
        .sum(-1, false)
        .unwrap();
    for (g, w) in got.iter().zip(want.to_vec::<f64>().unwrap()) {
        assert!((g - w).abs() < 1e-12);
    }
    let err = a.vecdot(&b).unwrap_err().to_string();
    assert!(
        err.contains("vecdot") && err.contains("[6, 4]") && err.contains("[4, 6]"),
        "{err}"
    );
}

#[test]
fn to_dtype_passes_the_gradient_through() {
    let x = Tensor::from_vec(vec![0.5f64, -1.0], &[2]).unwrap();
    let g = grad(
        |x| {
            Ok(x[0]
                .to_dtype(DType::F32)
                .exp()
                .to_dtype(DType::F64)
                .sum_all())
        },
        std::slice::from_ref(&x),
    )
    .unwrap();
    let want: Vec<f64> = x.to_vec::<f64>().unwrap().iter().map(|v| v.exp()).collect();
    for (a, b) in g[0].to_vec::<f64>().unwrap().iter().zip(want) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn third_derivative_of_tanh_is_right() {
    // With t = tanh x and s = 1 - t^2: tanh' = s, tanh'' = -2 t s,
    // tanh''' = -2 (s s + t (-2 t s)) = 4 t^2 s - 2 s^2.
    for x0 in [-1.3f64, 0.0, 0.4, 2.0] {
        let x = Tensor::from_vec(vec![x0], &[1]).unwrap();
        let third = grad(
            |x| {
                let h = hessian(|y| Ok(y.tanh().sum_all()), &x[0])?;
                Ok(h.sum_all())
            },
            &[x],
        )
        .unwrap();
        let t = x0.tanh();
        let s = 1.0 - t * t;
        let want = 4.0 * t * t * s - 2.0 * s * s;
        let got = third[0].to_vec::<f64>().unwrap()[0];
        assert!(
            (got - want).abs() < 1e-12,
            "tanh''' at {x0}: {got}, want {want}"
        );
    }
}

#[test]
fn jacobian_hessian_and_jvp_agree_with_closed_forms() {
    let mut rng = Rng::new(5);
    let a = Tensor::randn(&[3, 4], DType::F64, &mut rng);
    let x = Tensor::randn(&[4], DType::F64, &mut rng);
    // f(x) = A x: Jacobian A.
    let j = jacobian(|x| a.matmul(x), &x).unwrap();
    assert_eq!(j.to_vec::<f64>().unwrap(), a.to_vec::<f64>().unwrap());
    // g(x) = x^T A^T A x / 2: Hessian A^T A.
    let ata = a.t().unwrap().matmul(&a).unwrap();
    let h = hessian(|x| Ok(a.matmul(x)?.square().sum_all().mul_scalar(0.5)), &x).unwrap();
    for (p, q) in h
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .zip(ata.to_vec::<f64>().unwrap())
    {
        assert!((p - q).abs() < 1e-12);
    }
    // jvp of A x along t is A t; vjp with u is A^T u.
    let t = Tensor::randn(&[4], DType::F64, &mut rng);
    let (_, jt) = jvp(
        |x| a.matmul(&x[0]),
        std::slice::from_ref(&x),
        std::slice::from_ref(&t),
    )
    .unwrap();
    for (p, q) in jt
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .zip(a.matmul(&t).unwrap().to_vec::<f64>().unwrap())
    {
        assert!((p - q).abs() < 1e-12);
    }
    let u = Tensor::randn(&[3], DType::F64, &mut rng);
    let (_, vj) = vjp(|x| a.matmul(&x[0]), std::slice::from_ref(&x), &u).unwrap();
    for (p, q) in vj[0]
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .zip(a.t().unwrap().matmul(&u).unwrap().to_vec::<f64>().unwrap())
    {
        assert!((p - q).abs() < 1e-12);
    }
}

fn assert_close(got: &Tensor, want: &Tensor, tol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes");
    for (i, (p, q)) in got
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .zip(want.to_vec::<f64>().unwrap())
        .enumerate()
    {
        assert!(
            (p - q).abs() <= tol * (1.0 + q.abs()),
            "{what}[{i}]: {p} vs {q}"
        );
    }
}

/// A small network with most op families: linear, gather, softmax,
/// reductions, broadcasting, movement, layer norm.
fn network(x: &Tensor) -> Result<Tensor> {
    let w = Tensor::from_vec((0..12).map(|i| (i as f64 * 0.37).sin()).collect(), &[3, 4])?;
    let h = linear(&x.reshape([2, 4])?, &w, None)?.tanh();
    let n = h.layer_norm(None, None, 1e-5)?;
    let p = n.softmax(-1)?.mul(&h.exp())?;
    let picked = p.gather(1, &Tensor::from_vec(vec![2.0, 0.0], &[2, 1])?)?;
    let cols = p.t()?.narrow(0, 1, 2)?.sum(1, false)?;
    Tensor::cat(&[&picked.reshape([2])?, &cols.sqrt()], 0)?
        .logsumexp(0, false)?
        .add(&x.square().mean_all())
}

#[test]
fn forward_mode_jvp_equals_the_jacobian_applied_to_the_tangent() {
    let mut rng = Rng::new(11);
    let x = Tensor::randn(&[8], DType::F64, &mut rng);
    let t = Tensor::randn(&[8], DType::F64, &mut rng);
    let f = |x: &Tensor| -> Result<Tensor> {
        let h = linear(&x.reshape([2, 4])?, &x.reshape([2, 4])?, None)?;
        Tensor::cat(&[&h.sigmoid().flatten_all(), &x.narrow(0, 2, 3)?.cos()], 0)
    };
    let (y, jt) = jvp(
        |xs| f(&xs[0]),
        std::slice::from_ref(&x),
        std::slice::from_ref(&t),
    )
    .unwrap();
    assert_eq!(y.shape(), &[7]);
    let j = jacobian(f, &x).unwrap();
    let want = j.matmul(&t).unwrap();
    assert_close(&jt, &want, 1e-12, "J t");
    // The tangent of an unused input is zero, and a seeded non-leaf is
    // taken as given: its own inputs' tangents are ignored.
    let xl = x.set_requires_grad(true);
    let mid = xl.square();
    let out = mid.sum_all();
    let unit = Tensor::ones(&[8], DType::F64);
    let dt = forward_tangents(&[&out, &mid], &[(&mid, &unit), (&xl, &t)]).unwrap();
    assert_eq!(dt[0].as_ref().unwrap().to_f64().unwrap(), 8.0);
    assert_eq!(
        dt[1].as_ref().unwrap().to_vec::<f64>().unwrap(),
        vec![1.0; 8]
    );
    let other = Tensor::ones(&[2], DType::F64).set_requires_grad(true);
    let none = forward_tangents(&[&other.sum_all()], &[(&xl, &t)]).unwrap();
    assert!(none[0].is_none());
    let bad = forward_tangents(&[&out], &[(&xl, &Tensor::ones(&[3], DType::F64))]);
    assert!(bad.unwrap_err().to_string().contains("jvp"));
}

#[test]
fn hessian_vector_products_agree_three_ways_and_with_the_hessian() {
    let mut rng = Rng::new(12);
    let x = Tensor::randn(&[8], DType::F64, &mut rng);
    let v = Tensor::randn(&[8], DType::F64, &mut rng);
    let want = hessian(network, &x).unwrap().matmul(&v).unwrap();
    // Reverse over forward (hvp), forward over reverse (jvp of grad),
    // reverse over reverse (grad of <grad, v>).
    let rof = hvp(network, &x, &v).unwrap();
    let (_, for_) = jvp(
        |xs| Ok(grad(|y| network(&y[0]), xs)?.remove(0)),
        std::slice::from_ref(&x),
        std::slice::from_ref(&v),
    )
    .unwrap();
    let ror = grad(
        |xs| {
            grad(|y| network(&y[0]), xs)?
                .remove(0)
                .mul(&v)
                .map(|p| p.sum_all())
        },
        std::slice::from_ref(&x),
    )
    .unwrap()
    .remove(0);
    assert_close(&rof, &want, 1e-10, "reverse over forward");
    assert_close(&for_, &want, 1e-10, "forward over reverse");
    assert_close(&ror, &want, 1e-10, "reverse over reverse");
    // Forward over forward: the second directional derivative vᵀ H v.
    let (_, second) = jvp(
        |xs| Ok(jvp(|y| network(&y[0]), xs, std::slice::from_ref(&v))?.1),
        std::slice::from_ref(&x),
        std::slice::from_ref(&v),
    )
    .unwrap();
    let vhv = want.mul(&v).unwrap().sum_all().to_f64().unwrap();
    let got = second.to_f64().unwrap();
    assert!(
        (got - vhv).abs() < 1e-10 * (1.0 + vhv.abs()),
        "vᵀHv {got} vs {vhv}"
    );
}

#[test]
fn backward_accumulates_into_leaves_and_frees_the_graph() {
    let w = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])
        .unwrap()
        .set_requires_grad(true);
    // w used twice: gradients add.
    let loss = w.mul(&w).unwrap().add(&w).unwrap().sum_all();
    let grads = loss.backward().unwrap();
    assert_eq!(
        grads.get(&w).unwrap().to_vec::<f32>().unwrap(),
        vec![3.0, 5.0, 7.0]
    );
    // Training-style backward records nothing: the gradient has no graph.
    assert!(!grads.get(&w).unwrap().requires_grad());
    // With the graph kept, the gradient is differentiable.
    let g = w.mul(&w).unwrap().sum_all().backward_with_graph().unwrap();
    assert!(g.get(&w).unwrap().requires_grad());
}

#[test]
fn a_chain_of_100k_ops_does_not_overflow_the_stack() {
    let x = Tensor::from_vec(vec![1.0f64], &[1])
        .unwrap()
        .set_requires_grad(true);
    let mut y = x.clone();
    for _ in 0..100_000 {
        y = y.mul_scalar(1.0);
    }
    let grads = y.sum_all().backward().unwrap();
    assert_eq!(grads.get(&x).unwrap().to_vec::<f64>().unwrap(), vec![1.0]);
    // Dropping a long graph must not overflow either (nodes drop one by one).
    drop(y);
}

#[test]
fn no_grad_records_nothing_and_detach_cuts_the_graph() {
    let x = Tensor::ones(&[2], DType::F64).set_requires_grad(true);
    {
        let _g = ricci::no_grad();
        assert!(!x.exp().requires_grad());
    }
    assert!(x.exp().requires_grad());
    assert!(!x.exp().detach().requires_grad());
    // argmax and comparisons are not differentiable: no graph.
    assert!(!x.argmax(0, false).unwrap().requires_grad());
    assert!(!x.gt_scalar(0.0).requires_grad());
}

#[test]
fn backward_errors_are_clear() {
    let x = Tensor::ones(&[2], DType::F64).set_requires_grad(true);
    let y = x.exp();
    let e = y.backward().unwrap_err().to_string();
    assert!(e.contains("backward") && e.contains("[2]"), "{e}");
    let seed32 = Tensor::ones(&[2], DType::F32);
    let e = y.backward_with_seed(&seed32).unwrap_err().to_string();
    assert!(
        e.contains("dtype") && e.contains("f64") && e.contains("f32"),
        "{e}"
    );
    let z = Tensor::ones(&[2], DType::F64).set_requires_grad(true);
    let e = ricci::autograd::grad_of(&y.sum_all(), &[&z], None, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not part of the graph"), "{e}");
    let c = Tensor::ones(&[2], DType::F64);
    let e = ricci::autograd::grad_of(&y.sum_all(), &[&c], None, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not require grad"), "{e}");
    let e = x.diagonal(0, 0, 0).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("diagonal"), "{e}");
}

//! `ricci train --lora R --resume DIR --data FILE`: a character model
//! trained on one text, fine-tuned with adapters only on another; the
//! validation loss on the new text falls, under 2% of the parameters train,
//! the base run is untouched, and `sample` loads the adapted model.

use serde_json::Value;

mod common;

use common::{one_line_error, ricci, run_ok, scratch};

/// Words drawn with a small linear congruential generator (deterministic).
fn words(list: &[&str], n: usize, mut state: u64) -> String {
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            list[(state >> 33) as usize % list.len()]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn lora_fine_tune_lowers_validation_loss_on_new_text() {
    let dir = scratch("lora", "ft");
    let base_text = dir.join("base.txt");
    let new_text = dir.join("new.txt");
    let base_words = [
        "the", "cat", "sat", "on", "mat", "a", "hat", "and", "dog", "ran", "rode", "goat",
    ];
    std::fs::write(&base_text, words(&base_words, 5000, 1)).unwrap();
    std::fs::write(
        &new_text,
        words(
            &["to", "road", "tan", "goat", "cod", "note", "hen", "den"],
            3000,
            2,
        ),
    )
    .unwrap();
    let base = dir.join("base");
    run_ok(ricci().args([
        "train",
        "--data",
        base_text.to_str().unwrap(),
        "--n-layer",
        "2",
        "--n-head",
        "4",
        "--n-embd",
        "128",
        "--block-size",
        "32",
        "--batch-size",
        "16",
        "--steps",
        "150",
        "--lr",
        "3e-3",
        "--eval-every",
        "0",
        "--quiet",
        "--out",
        base.to_str().unwrap(),
    ]));
    let checkpoint = std::fs::read(base.join("checkpoint.safetensors")).unwrap();

    let lora = dir.join("lora");
    let out = run_ok(ricci().args([
        "train",
        "--lora",
        "1",
        "--resume",
        base.to_str().unwrap(),
        "--data",
        new_text.to_str().unwrap(),
        "--steps",
        "150",
        "--lr",
        "1e-2",
        "--json",
        "--out",
        lora.to_str().unwrap(),
    ]));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let fraction = s["trainable_fraction"].as_f64().unwrap();
    assert!(fraction > 0.0 && fraction < 0.02, "{fraction}");
    let (before, after) = (
        s["val_loss_before"].as_f64().unwrap(),
        s["val_loss_after"].as_f64().unwrap(),
    );
    assert!(after < before - 0.1, "validation loss {before} -> {after}");
    // Only the adapters are saved: 2 layers x 4 linear maps x (A, B).
    let adapters = ricci::io::read_safetensors(lora.join("adapters.safetensors")).unwrap();
    assert_eq!(adapters.len(), 16);
    assert!(adapters
        .iter()
        .all(|(n, _)| n.ends_with("lora_a") || n.ends_with("lora_b")));
    let trainable: usize = adapters.iter().map(|(_, t)| t.numel()).sum();
    assert_eq!(
        trainable as u64,
        s["trainable_parameters"].as_u64().unwrap()
    );
    assert!(!lora.join("checkpoint.safetensors").exists());
    assert_eq!(
        std::fs::read(base.join("checkpoint.safetensors")).unwrap(),
        checkpoint,
        "base run changed"
    );

    // The adapted model samples.
    let out = run_ok(ricci().args([
        "sample",
        "--checkpoint",
        lora.to_str().unwrap(),
        "--prompt",
        "to ",
        "--tokens",
        "20",
    ]));
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("to "));

    // Bad input.
    let b = base.to_str().unwrap();
    let n = new_text.to_str().unwrap();
    one_line_error(&["train", "--lora", "1", "--data", n], "--resume DIR");
    one_line_error(&["train", "--lora", "1", "--resume", b], "--data FILE");
    one_line_error(
        &["train", "--lora", "0", "--resume", b, "--data", n],
        "rank 0",
    );
    let alien = dir.join("alien.txt");
    std::fs::write(&alien, "xyz ".repeat(200)).unwrap();
    one_line_error(
        &[
            "train",
            "--lora",
            "1",
            "--resume",
            b,
            "--data",
            alien.to_str().unwrap(),
        ],
        "not in the model's vocabulary",
    );
    one_line_error(&["train", "--resume", b, "--data", n], "use --lora");
    one_line_error(
        &["train", "--resume", lora.to_str().unwrap()],
        "LoRA fine-tune",
    );
}

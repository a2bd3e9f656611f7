//! Character-level text: the vocabulary is the file's distinct characters
//! (sorted), the first 90% of the characters train and the last 10% validate.

use std::path::Path;

use super::Split;
use crate::error::{Error, Result};
use crate::tensor::{DType, Rng, Tensor};

/// A character-level corpus.
///
/// ```
/// use ricci::data::{CharText, Split};
/// use ricci::{DType, Rng};
/// let text = CharText::from_text(&"hello world, ".repeat(20), 8, "inline")?;
/// assert_eq!(text.vocab(), " ,dehlorw".chars().collect::<Vec<_>>());
/// let (x, y) = text.batch(Split::Train, 4, 8, &mut Rng::new(0), DType::F32)?;
/// assert_eq!(x.shape(), &[4, 8]);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CharText {
    vocab: Vec<char>,
    train: Vec<u32>,
    val: Vec<u32>,
}

impl CharText {
    /// Reads a UTF-8 file. Missing, empty, binary (NUL bytes or invalid
    /// UTF-8) or too short for one block of `block_size + 1` characters in
    /// each split: an error naming the file.
    pub fn from_file(path: impl AsRef<Path>, block_size: usize) -> Result<CharText> {
        let (text, name) = read_text(path.as_ref())?;
        CharText::from_text(&text, block_size, &name)
    }

    /// As [`CharText::from_file`] for text in memory; `name` is used in errors.
    pub fn from_text(text: &str, block_size: usize, name: &str) -> Result<CharText> {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        CharText::from_text_with_vocab(text, block_size, name, &vocab)
    }

    /// Text encoded with a given vocabulary (a trained model's, for
    /// fine-tuning on new text): a character outside it is an error naming
    /// the character.
    ///
    /// ```
    /// use ricci::data::CharText;
    /// let vocab: Vec<char> = " abc".chars().collect();
    /// let text = CharText::from_text_with_vocab(&"ab ".repeat(30), 4, "new", &vocab)?;
    /// assert_eq!(text.vocab_size(), 4);
    /// assert!(CharText::from_text_with_vocab("abd abd abd", 1, "new", &vocab).is_err());
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn from_text_with_vocab(
        text: &str,
        block_size: usize,
        name: &str,
        vocab: &[char],
    ) -> Result<CharText> {
        let mut vocab = vocab.to_vec();
        vocab.sort_unstable();
        vocab.dedup();
        let chars: Vec<char> = text.chars().collect();
        if chars.is_empty() {
            return Err(Error::format(name, "the text is empty"));
        }
        let ids: Vec<u32> = encode_with(&vocab, text)
            .map_err(|e| Error::format(name, e.to_string()))?
            .into_iter()
            .map(|i| i as u32)
            .collect();
        let split = ids.len() * 9 / 10;
        let (train, val) = (ids[..split].to_vec(), ids[split..].to_vec());
        let need = block_size + 1;
        if train.len() < need || val.len() < need {
            return Err(Error::format(
                name,
                format!(
                    "{} characters is too short: each split needs one block of {need} (block_size {block_size}), \
                     so the text needs at least {}",
                    chars.len(),
                    need * 10
                ),
            ));
        }
        Ok(CharText { vocab, train, val })
    }

    /// As [`CharText::from_file`], encoded with a given vocabulary
    /// ([`CharText::from_text_with_vocab`]).
    pub fn from_file_with_vocab(
        path: impl AsRef<Path>,
        block_size: usize,
        vocab: &[char],
    ) -> Result<CharText> {
        let (text, name) = read_text(path.as_ref())?;
        CharText::from_text_with_vocab(&text, block_size, &name, vocab)
    }

    pub fn vocab(&self) -> Vec<char> {
        self.vocab.clone()
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// Ids of `text`'s characters; a character outside the vocabulary is an error.
    pub fn encode(&self, text: &str) -> Result<Vec<usize>> {
        encode_with(&self.vocab, text)
    }

    pub fn split_len(&self, split: Split) -> usize {
        self.ids(split).len()
    }

    fn ids(&self, split: Split) -> &[u32] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }

    /// `batch_size` random windows of `block_size` characters and the same
    /// windows shifted by one, `[batch_size, block_size]` each.
    pub fn batch(
        &self,
        split: Split,
        batch_size: usize,
        block_size: usize,
        rng: &mut Rng,
        dtype: DType,
    ) -> Result<(Tensor, Tensor)> {
        let ids = self.ids(split);
        if ids.len() < block_size + 1 {
            return Err(Error::invalid(
                "CharText::batch",
                format!(
                    "block_size {block_size} needs {} characters, the split has {}",
                    block_size + 1,
                    ids.len()
                ),
            ));
        }
        let mut x = Vec::with_capacity(batch_size * block_size);
        let mut y = Vec::with_capacity(batch_size * block_size);
        for _ in 0..batch_size {
            let start = rng.below((ids.len() - block_size) as u64) as usize;
            x.extend(ids[start..start + block_size].iter().map(|&i| i as f64));
            y.extend(
                ids[start + 1..start + block_size + 1]
                    .iter()
                    .map(|&i| i as f64),
            );
        }
        let shape = [batch_size, block_size];
        Ok((
            Tensor::from_vec(x, &shape)?.to_dtype(dtype),
            Tensor::from_vec(y, &shape)?.to_dtype(dtype),
        ))
    }
}

/// A file's text and its name for errors: missing, binary (NUL bytes) or
/// invalid UTF-8 is an error naming the file.
fn read_text(path: &Path) -> Result<(String, String)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    if bytes.contains(&0) {
        return Err(Error::format(
            name,
            "binary data (NUL bytes), expected UTF-8 text",
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::format(
            name.clone(),
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    Ok((text, name))
}

/// Ids of `text`'s characters in `vocab` (sorted).
pub fn encode_with(vocab: &[char], text: &str) -> Result<Vec<usize>> {
    text.chars()
        .map(|c| {
            vocab.binary_search(&c).map_err(|_| {
                Error::invalid(
                    "encode",
                    format!("character {c:?} is not in the model's vocabulary"),
                )
            })
        })
        .collect()
}

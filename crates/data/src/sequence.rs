//! Sequences for RNNs: images read row by row (a 32 x 32 RGB image is 32 steps of 96
//! features), and character-level text in fixed-length windows for language models, from a
//! user's file or from a built-in probabilistic grammar.

use std::collections::BTreeSet;
use std::path::Path;

use burn::data::dataset::{Dataset, DatasetError};
use rand::Rng;

use crate::rng::rng_for;
use crate::{DataError, ImageDataset, ImageItem, Split};

/// An image as a sequence: one step per row, each step the row's R, G and B bytes
/// (`3 * width` features, channel-major).
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceItem {
    /// `steps * features` values in [0, 1], step-major.
    pub values: Vec<f32>,
    /// Number of time steps (image rows).
    pub steps: usize,
    /// Features per step (3 x image width).
    pub features: usize,
    /// The class.
    pub label: usize,
}

impl SequenceItem {
    /// The image read row by row.
    pub fn from_image(item: &ImageItem) -> Self {
        let (h, w) = (item.height, item.width);
        let features = 3 * w;
        let mut values = vec![0f32; h * features];
        for y in 0..h {
            for c in 0..3 {
                for x in 0..w {
                    values[y * features + c * w + x] = item.at(c, y, x) as f32 / 255.0;
                }
            }
        }
        Self {
            values,
            steps: h,
            features,
            label: item.label,
        }
    }
}

/// Any image dataset read as sequences of rows.
#[derive(Debug, Clone)]
pub struct RowSequences<D> {
    inner: D,
}

impl<D: ImageDataset> RowSequences<D> {
    /// Reads `inner`'s images row by row.
    pub fn new(inner: D) -> Self {
        Self { inner }
    }
    /// (steps, features) of every item.
    pub fn shape(&self) -> (usize, usize) {
        let (h, w) = self.inner.image_size();
        (h, 3 * w)
    }
    /// The class names.
    pub fn class_names(&self) -> &[String] {
        self.inner.class_names()
    }
}

impl<D: ImageDataset> Dataset<SequenceItem> for RowSequences<D> {
    fn get(&self, index: usize) -> Result<SequenceItem, DatasetError> {
        Ok(SequenceItem::from_image(&self.inner.get(index)?))
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
}

/// A window of text as token ids: `inputs[t]` is followed by `targets[t]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextItem {
    /// Token ids of the window.
    pub inputs: Vec<usize>,
    /// The same window shifted by one character: the next-token targets.
    pub targets: Vec<usize>,
}

/// A character-level corpus cut into windows of `window` characters (plus one for the
/// targets). Windows start every `stride` characters.
#[derive(Debug, Clone)]
pub struct TextCorpus {
    tokens: Vec<usize>,
    vocabulary: Vec<char>,
    window: usize,
    stride: usize,
}

impl TextCorpus {
    /// A corpus from `text`, its vocabulary the sorted set of its characters.
    pub fn from_text(text: &str, window: usize, stride: usize) -> Result<Self, DataError> {
        if window == 0 || stride == 0 {
            return Err(DataError::BadOption(format!(
                "text windows need a positive length and stride, got {window} and {stride}"
            )));
        }
        let vocabulary: Vec<char> = text.chars().collect::<BTreeSet<_>>().into_iter().collect();
        let tokens: Vec<usize> = text
            .chars()
            .map(|c| vocabulary.binary_search(&c).unwrap_or(0))
            .collect();
        if tokens.len() < window + 1 {
            let held = match tokens.len() {
                1 => "1 character".to_string(),
                n => format!("{n} characters"),
            };
            return Err(DataError::BadOption(format!(
                "the text holds {held}, fewer than one window of {window} characters plus its target (use a longer text or a smaller --window)"
            )));
        }
        Ok(Self {
            tokens,
            vocabulary,
            window,
            stride,
        })
    }

    /// A corpus from a UTF-8 text file.
    pub fn from_file(path: &Path, window: usize, stride: usize) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| DataError::Format {
            path: path.to_path_buf(),
            message: format!(
                "not UTF-8 text (byte offset {})",
                e.utf8_error().valid_up_to()
            ),
        })?;
        Self::from_text(&text, window, stride).map_err(|e| match e {
            DataError::BadOption(m) => DataError::Format {
                path: path.to_path_buf(),
                message: m,
            },
            other => other,
        })
    }

    /// The built-in synthetic corpus: `characters` characters from [`SyntheticText`].
    pub fn synthetic(
        split: Split,
        seed: u64,
        characters: usize,
        window: usize,
        stride: usize,
    ) -> Result<Self, DataError> {
        Self::from_text(
            &SyntheticText::new(seed).generate(split, characters),
            window,
            stride,
        )
    }

    /// The vocabulary: token id -> character.
    pub fn vocabulary(&self) -> &[char] {
        &self.vocabulary
    }

    /// Window length.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The text of token ids.
    pub fn decode(&self, tokens: &[usize]) -> String {
        tokens
            .iter()
            .map(|t| self.vocabulary.get(*t).copied().unwrap_or('?'))
            .collect()
    }
}

impl Dataset<TextItem> for TextCorpus {
    fn get(&self, index: usize) -> Result<TextItem, DatasetError> {
        if index >= self.len() {
            return Err(DataError::Index {
                index,
                len: self.len(),
            }
            .into());
        }
        let start = index * self.stride;
        Ok(TextItem {
            inputs: self.tokens[start..start + self.window].to_vec(),
            targets: self.tokens[start + 1..start + self.window + 1].to_vec(),
        })
    }
    fn len(&self) -> usize {
        (self.tokens.len() - self.window - 1) / self.stride + 1
    }
}

/// A small probabilistic grammar of English-like sentences ("the small robot sees a red
/// ball near the old house."), the default text source: it has structure at the word and
/// sentence level for a language model to learn, and needs no file.
#[derive(Debug, Clone)]
pub struct SyntheticText {
    seed: u64,
}

const DETERMINERS: [&str; 4] = ["the", "a", "every", "some"];
const ADJECTIVES: [&str; 10] = [
    "small", "red", "old", "quiet", "bright", "green", "heavy", "quick", "strange", "blue",
];
const NOUNS: [&str; 12] = [
    "robot", "ball", "house", "river", "bird", "teacher", "network", "garden", "window", "cat",
    "engine", "letter",
];
const VERBS: [&str; 10] = [
    "sees", "finds", "follows", "builds", "carries", "watches", "paints", "opens", "moves", "likes",
];
const PREPOSITIONS: [&str; 6] = ["near", "under", "behind", "with", "above", "inside"];
const CONJUNCTIONS: [&str; 3] = ["and", "but", "while"];

impl SyntheticText {
    /// A grammar whose sentences are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    fn noun_phrase(rng: &mut impl Rng, out: &mut Vec<&'static str>) {
        out.push(DETERMINERS[rng.random_range(0..DETERMINERS.len())]);
        while rng.random::<f32>() < 0.4 {
            out.push(ADJECTIVES[rng.random_range(0..ADJECTIVES.len())]);
        }
        out.push(NOUNS[rng.random_range(0..NOUNS.len())]);
        if rng.random::<f32>() < 0.25 {
            out.push(PREPOSITIONS[rng.random_range(0..PREPOSITIONS.len())]);
            out.push(DETERMINERS[rng.random_range(0..DETERMINERS.len())]);
            out.push(NOUNS[rng.random_range(0..NOUNS.len())]);
        }
    }

    fn clause(rng: &mut impl Rng, out: &mut Vec<&'static str>) {
        Self::noun_phrase(rng, out);
        out.push(VERBS[rng.random_range(0..VERBS.len())]);
        Self::noun_phrase(rng, out);
    }

    /// At least `characters` characters of sentences for `split` (splits never share text).
    pub fn generate(&self, split: Split, characters: usize) -> String {
        let mut rng = rng_for(&[self.seed, split.seed_tag(), 0x7465_7874]);
        let mut text = String::with_capacity(characters + 100);
        while text.len() < characters {
            let mut words = Vec::new();
            Self::clause(&mut rng, &mut words);
            if rng.random::<f32>() < 0.3 {
                words.push(CONJUNCTIONS[rng.random_range(0..CONJUNCTIONS.len())]);
                Self::clause(&mut rng, &mut words);
            }
            let sentence = words.join(" ");
            let mut chars = sentence.chars();
            if let Some(first) = chars.next() {
                text.extend(first.to_uppercase());
                text.push_str(chars.as_str());
            }
            text.push_str(". ");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_shift_by_one() {
        let corpus = TextCorpus::from_text("abcdefgh", 3, 2).unwrap();
        assert_eq!(
            corpus.vocabulary(),
            &['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
        );
        assert_eq!(corpus.len(), 3);
        let item = corpus.get(1).unwrap();
        assert_eq!(corpus.decode(&item.inputs), "cde");
        assert_eq!(corpus.decode(&item.targets), "def");
        assert!(corpus.get(3).is_err());
        assert!(TextCorpus::from_text("ab", 3, 1).is_err());
    }

    #[test]
    fn synthetic_text_is_deterministic_and_sentence_like() {
        let a = SyntheticText::new(1).generate(Split::Train, 2000);
        assert_eq!(a, SyntheticText::new(1).generate(Split::Train, 2000));
        assert_ne!(a, SyntheticText::new(1).generate(Split::Test, 2000));
        assert!(a.len() >= 2000 && a.contains(". ") && a.starts_with(char::is_uppercase));
    }

    #[test]
    fn images_become_rows() {
        let item = ImageItem {
            pixels: (0..3 * 2 * 4).map(|i| i as u8).collect(),
            height: 2,
            width: 4,
            label: 1,
        };
        let s = SequenceItem::from_image(&item);
        assert_eq!((s.steps, s.features, s.label), (2, 12, 1));
        // Step 1 starts with the red byte at (y=1, x=0): index 4 in the red plane.
        assert_eq!(s.values[12], 4.0 / 255.0);
        // Then the green row: plane offset 8, row 1.
        assert_eq!(s.values[12 + 4], 12.0 / 255.0);
    }
}

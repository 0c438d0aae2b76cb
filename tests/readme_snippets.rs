//! Every Rust snippet of the README and of the book (`docs/book/src/`) is compiled code: each
//! ```rust block appears, line for line, in a file of `examples/`, `tests/` or `benches/` that
//! CI builds (a line `// ...` in a snippet stands for lines left out). The library tour of the
//! book's "The library" page is the test below.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Distribution, Tensor};
use repsim::{linear_cka, Layer, MinibatchCka};

type Error = Box<dyn std::error::Error>;

/// The book's library tour (its snippet is these lines, `batches` left out).
#[test]
fn the_library_tour_runs() -> Result<(), Error> {
    let device = Device::flex();
    // conv activations (N x C x H x W) and logits (N x 10) of 64 examples
    let x = Tensor::<4>::random([64, 8, 4, 4], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<2>::random([64, 10], Distribution::Normal(0.0, 1.0), &device);
    let cka = linear_cka(&x, &y)?; // f64; Err(ZeroVariance { layer }) if a side is constant

    // Four batches of 16 examples: model A's layers and model B's, per batch.
    let batch = |t: &Tensor<4>, b: usize| t.clone().narrow(0, 16 * b, 16);
    let batches = (0..4).map(|b| {
        let conv = Layer::new("conv", batch(&x, b)).unwrap();
        let logits = Layer::new("logits", y.clone().narrow(0, 16 * b, 16)).unwrap();
        (vec![conv.clone()], vec![logits, conv])
    });

    // Whole models, batch by batch: each layer's Gram is computed once per batch.
    let mut acc = MinibatchCka::new();
    for (layers_a, layers_b) in batches {
        acc.update(&layers_a, &layers_b)?; // Vec<Layer> each
    }
    let matrix = acc.finish()?; // SimilarityMatrix
    assert!((0.0..=1.0).contains(&cka));
    assert_eq!((matrix.rows.len(), matrix.cols.len()), (1, 2));
    assert!((matrix.values[0][1].unwrap() - 1.0).abs() < 1e-5);
    Ok(())
}

#[path = "../examples/cka_two_tensors.rs"]
mod cka_two_tensors;
#[path = "../examples/compare_files.rs"]
#[allow(dead_code)]
mod compare_files;

/// The quickstart examples run; the files example gives the fixtures' reference values
/// (`tests/fixtures/README.md`: linear CKA 0.557613, RBF CKA at 0.5 0.654831, mean CCA
/// 0.731014, float32 to about 1e-4).
#[test]
fn the_quickstart_examples_run_and_give_the_reference_values() -> Result<(), Error> {
    cka_two_tensors::main()?;
    let (a, b) = compare_files::demo_files();
    let matrices = compare_files::compare_files(&a, &b, "linear_cka,rbf_cka:threshold=0.5,cca")?;
    let value = |k: usize| matrices[k].values[0][0].unwrap();
    for (k, expected) in [0.557613, 0.654831, 0.731014].into_iter().enumerate() {
        assert!(
            (value(k) - expected).abs() < 1e-4,
            "{}: {}",
            matrices[k].measure,
            value(k)
        );
    }
    Ok(())
}

/// The ```rust blocks of the README and of every page of the book, each with its file and
/// the line it starts on.
fn doc_snippets() -> Vec<(String, usize, Vec<String>)> {
    let mut pages = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs/book/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    let mut snippets = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page
            .strip_prefix(root())
            .unwrap_or(&page)
            .display()
            .to_string();
        let mut current: Option<(usize, Vec<String>)> = None;
        for (i, line) in text.lines().enumerate() {
            match &mut current {
                None if line.trim_start() == "```rust" => current = Some((i + 1, Vec::new())),
                Some(_) if line.trim_start() == "```" => {
                    if let Some((start, lines)) = current.take() {
                        snippets.push((name.clone(), start, lines));
                    }
                }
                Some((_, lines)) => lines.push(line.to_string()),
                None => {}
            }
        }
    }
    snippets
}

fn root() -> PathBuf {
    // Read at run time: a test binary reused by another checkout must read that checkout.
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()))
}

/// The Rust files CI compiles besides the libraries: examples and tests.
fn compiled_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["examples", "tests", "benches"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "rs") {
                files.push(entry.path());
            }
        }
    }
    files
}

/// The snippet's runs of lines between `// ...` lines, each trimmed, blank lines dropped.
fn segments(snippet: &[String]) -> Vec<Vec<String>> {
    let mut segments = vec![Vec::new()];
    for line in snippet {
        let line = line.trim();
        if line.starts_with("// ...") {
            segments.push(Vec::new());
        } else if !line.is_empty() {
            segments.last_mut().unwrap().push(line.to_string());
        }
    }
    segments.into_iter().filter(|s| !s.is_empty()).collect()
}

/// Whether the segments appear in `file`, each as consecutive lines, in order.
fn appears_in(segments: &[Vec<String>], file: &Path) -> bool {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut from = 0;
    for segment in segments {
        let found = (from..lines.len().saturating_sub(segment.len() - 1)).find(|&start| {
            segment
                .iter()
                .enumerate()
                .all(|(k, line)| lines[start + k] == line)
        });
        match found {
            Some(start) => from = start + segment.len(),
            None => return false,
        }
    }
    true
}

#[test]
fn every_snippet_of_the_readme_and_the_book_is_compiled_code() {
    let snippets = doc_snippets();
    assert!(snippets.len() >= 6, "only {} Rust snippets", snippets.len());
    assert!(
        snippets
            .iter()
            .filter(|(page, ..)| page == "README.md")
            .count()
            >= 2,
        "the README's quickstarts lost their Rust blocks"
    );
    let files = compiled_files();
    for (page, line, snippet) in snippets {
        let segments = segments(&snippet);
        assert!(!segments.is_empty(), "{page}:{line}: an empty snippet");
        assert!(
            files.iter().any(|f| appears_in(&segments, f)),
            "{page}:{line}: this snippet is not in any example, test or bench:\n{}",
            snippet.join("\n")
        );
    }
}

#[test]
fn the_snippet_matcher_needs_every_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.rs");
    std::fs::write(
        &file,
        "fn a() {\n    let x = 1;\n\n    let y = 2;\n    call(x, y);\n}\n",
    )
    .unwrap();
    let snippet = |s: &str| segments(&s.lines().map(String::from).collect::<Vec<_>>());
    assert!(appears_in(&snippet("let x = 1;\nlet y = 2;"), &file));
    assert!(appears_in(
        &snippet("let x = 1;\n// ... more\ncall(x, y);"),
        &file
    ));
    assert!(!appears_in(&snippet("let y = 2;\nlet x = 1;"), &file));
    assert!(!appears_in(&snippet("let x = 1;\ncall(x, y);"), &file));
}
